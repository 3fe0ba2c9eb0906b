//! The HTTP side: the page, the JSON API and its OpenAPI document. Every refusal is a
//! 4xx with `{"error": "..."}`; nothing here starts a run that was refused.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::runs::{Refusal, RunRequest, RunView, Runs, Status, Target};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "datagen serve",
        description = "Generates user registration events into Kafka or the e-commerce data set into PostgreSQL, on demand. Runs go on in the background; follow them with GET /api/runs/{id}."
    ),
    paths(health, start_run, list_runs, get_run, cancel_run),
    components(schemas(RunRequest, RunView, Target, Status, ApiError, Health))
)]
pub struct ApiDoc;

/// An error: what was wrong, in words.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    pub error: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

/// `Json` whose rejections (wrong content type, malformed JSON, wrong fields) answer
/// with the JSON error body like every other refusal.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let message = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => {
                        "the body must be JSON with Content-Type: application/json".to_string()
                    }
                    other => other.body_text(),
                };
                Err(error(rejection.status(), message))
            }
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// Runs going on.
    pub running: usize,
}

pub fn router(runs: Arc<Runs>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/api/openapi.json", get(openapi))
        .route("/api/runs", post(start_run).get(list_runs))
        .route("/api/runs/{id}", get(get_run))
        .route("/api/runs/{id}/cancel", post(cancel_run))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page") })
        .with_state(runs)
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// The document with this server's limits (from its `.env`) as the maxima.
async fn openapi(State(runs): State<Arc<Runs>>) -> Json<serde_json::Value> {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let l = runs.limits();
    let props = &mut doc["components"]["schemas"]["RunRequest"]["properties"];
    if props.is_object() {
        props["count"]["maximum"] = l.max_count.max(l.max_pg_users).into();
        props["rate"]["maximum"] = l.max_rate.into();
    }
    Json(doc)
}

/// The server answers (for healthchecks).
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)))]
async fn health(State(runs): State<Arc<Runs>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        running: runs.running(),
    })
}

/// Start a run. It goes on in the background: follow it at the `Location` it answers with.
#[utoipa::path(
    post,
    path = "/api/runs",
    request_body = RunRequest,
    responses(
        (status = 202, description = "Started", body = RunView,
         headers(("Location" = String, description = "The run's URL"))),
        (status = 400, description = "Malformed JSON", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 415, description = "Not JSON", body = ApiError),
        (status = 422, description = "A value not allowed (limits, unknown target or field)", body = ApiError),
        (status = 429, description = "Too many runs at once", body = ApiError),
    )
)]
async fn start_run(
    State(runs): State<Arc<Runs>>,
    request: Result<ApiJson<RunRequest>, Response>,
) -> Response {
    let ApiJson(request) = match request {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    match runs.start(&request) {
        Ok(view) => {
            let mut response = (StatusCode::ACCEPTED, Json(&view)).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/api/runs/{}", view.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(Refusal::Invalid(m)) => error(StatusCode::UNPROCESSABLE_ENTITY, m),
        Err(Refusal::Busy(m)) => error(StatusCode::TOO_MANY_REQUESTS, m),
    }
}

/// The runs going on and the recent ones, newest first.
#[utoipa::path(get, path = "/api/runs", responses((status = 200, body = Vec<RunView>)))]
async fn list_runs(State(runs): State<Arc<Runs>>) -> Json<Vec<RunView>> {
    Json(runs.list())
}

fn run_id(id: Result<Path<String>, PathRejection>) -> Result<u64, Response> {
    let Path(id) = id.map_err(|e| error(StatusCode::NOT_FOUND, e.body_text()))?;
    id.parse()
        .map_err(|_| error(StatusCode::NOT_FOUND, format!("no run {id}")))
}

/// The longest a `GET /api/runs/{id}?wait=` may wait, in seconds.
const MAX_WAIT_SECS: f64 = 60.0;

/// How long to wait for a run's end.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Wait {
    /// Seconds to wait for the run to end before answering (0 to 60; omitted: 0). The
    /// answer comes as soon as the run ends, so a client follows a run with one
    /// request instead of polling.
    #[param(minimum = 0.0, maximum = 60.0)] // utoipa wants a literal: MAX_WAIT_SECS, tested
    wait: Option<f64>,
}

/// One run: its progress while it goes on, its result at the end.
#[utoipa::path(
    get,
    path = "/api/runs/{id}",
    params(("id" = String, Path, description = "The run's id"), Wait),
    responses(
        (status = 200, body = RunView),
        (status = 400, description = "A wait that is not a number of seconds from 0 to 60", body = ApiError),
        (status = 404, description = "No such run (or no longer kept)", body = ApiError),
    )
)]
async fn get_run(
    State(runs): State<Arc<Runs>>,
    id: Result<Path<String>, PathRejection>,
    wait: Result<Query<Wait>, QueryRejection>,
) -> Response {
    let id = match run_id(id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let wait = match wait {
        Ok(Query(Wait { wait: None })) => 0.0,
        Ok(Query(Wait { wait: Some(w) })) if (0.0..=MAX_WAIT_SECS).contains(&w) => w,
        Ok(Query(Wait { wait: Some(w) })) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("wait {w} must be a number of seconds from 0 to {MAX_WAIT_SECS}"),
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match runs.wait(id, Duration::from_secs_f64(wait)).await {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no run {id}")),
    }
}

/// Cancel a running run. Kafka keeps what was delivered; PostgreSQL rolls back.
#[utoipa::path(
    post,
    path = "/api/runs/{id}/cancel",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 202, description = "Cancel requested; the run ends shortly", body = RunView),
        (status = 404, description = "No such run", body = ApiError),
        (status = 409, description = "The run has already ended", body = ApiError),
    )
)]
async fn cancel_run(
    State(runs): State<Arc<Runs>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match run_id(id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match runs.cancel(id) {
        Some(Ok(view)) => (StatusCode::ACCEPTED, Json(view)).into_response(),
        Some(Err(view)) => error(
            StatusCode::CONFLICT,
            format!("run {id} has already ended ({:?})", view.status).to_lowercase(),
        ),
        None => error(StatusCode::NOT_FOUND, format!("no run {id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_states_the_longest_wait_the_server_allows() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("document");
        let params = doc["paths"]["/api/runs/{id}"]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        let wait = params
            .iter()
            .find(|p| p["name"] == "wait")
            .expect("a wait parameter");
        assert_eq!(wait["in"], "query");
        assert_eq!(wait["schema"]["maximum"].as_f64(), Some(MAX_WAIT_SECS));
    }
}
