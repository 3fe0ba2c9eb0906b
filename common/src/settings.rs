//! Connection settings, one struct per service. Each field reads the `.env` name
//! and can be overridden on the command line; passwords are read from the
//! environment only, so they never appear in a process list or shell history.

use std::time::Duration;

use clap::Args;
use rdkafka::ClientConfig;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;

use crate::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0} is not set: put it in .env or the environment")]
    Missing(&'static str),
    #[error("{name} = {value:?} is not a valid identifier (letters, digits and _ only)")]
    BadIdentifier { name: &'static str, value: String },
    #[error("{0} may hold only letters, digits and - . _ ~")]
    BadToken(&'static str),
}

fn env_secret(name: &'static str) -> Result<Secret, SettingsError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
        _ => Err(SettingsError::Missing(name)),
    }
}

/// Names that end up inside SQL text or JDBC options are restricted to plain identifiers.
pub fn check_identifier(name: &'static str, value: &str) -> Result<(), SettingsError> {
    let mut chars = value.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && value.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(SettingsError::BadIdentifier {
            name,
            value: value.to_string(),
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct PostgresSettings {
    /// PostgreSQL host
    #[arg(
        id = "pg-host",
        long = "pg-host",
        env = "POSTGRES_HOST",
        default_value = "localhost"
    )]
    pub host: String,
    /// PostgreSQL port
    #[arg(
        id = "pg-port",
        long = "pg-port",
        env = "POSTGRES_PORT",
        default_value_t = 5432
    )]
    pub port: u16,
    /// PostgreSQL database
    #[arg(
        id = "pg-db",
        long = "pg-db",
        env = "POSTGRES_DB",
        default_value = "postgres_finals_db"
    )]
    pub database: String,
    /// PostgreSQL schema holding the platform's tables
    #[arg(
        id = "pg-schema",
        long = "pg-schema",
        env = "POSTGRES_SCHEMA",
        default_value = "postgres_finals_schema"
    )]
    pub schema: String,
    /// PostgreSQL user (the password comes from POSTGRES_PASSWORD)
    #[arg(
        id = "pg-user",
        long = "pg-user",
        env = "POSTGRES_USER",
        default_value = "finals_user"
    )]
    pub user: String,
}

impl PostgresSettings {
    /// The variable holding the password, for the jobs and for the Spark cluster
    /// (which reads it from its own environment: see `spark::jdbc`).
    pub const PASSWORD_ENV: &'static str = "POSTGRES_PASSWORD";

    pub fn validate(&self) -> Result<(), SettingsError> {
        check_identifier("POSTGRES_DB", &self.database)?;
        check_identifier("POSTGRES_SCHEMA", &self.schema)
    }

    pub fn password(&self) -> Result<Secret, SettingsError> {
        env_secret(Self::PASSWORD_ENV)
    }

    /// Where it points, for messages: no password in it.
    pub fn describe(&self) -> String {
        format!(
            "PostgreSQL {}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// sqlx options with the schema as search path, so queries use bare table names.
    pub fn connect_options(&self) -> Result<PgConnectOptions, SettingsError> {
        self.validate()?;
        Ok(PgConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(self.password()?.expose())
            .database(&self.database)
            .application_name("finals-platform")
            .options([("search_path", self.schema.as_str())]))
    }

    /// JDBC URL as the Spark cluster sees it. Credentials go in separate options.
    pub fn jdbc_url(&self) -> String {
        format!(
            "jdbc:postgresql://{}:{}/{}?currentSchema={}&ApplicationName=finals-platform-spark",
            self.host, self.port, self.database, self.schema
        )
    }
}

#[derive(Debug, Clone, Args)]
pub struct MysqlSettings {
    /// MySQL host
    #[arg(
        id = "mysql-host",
        long = "mysql-host",
        env = "MYSQL_HOST",
        default_value = "localhost"
    )]
    pub host: String,
    /// MySQL port
    #[arg(
        id = "mysql-port",
        long = "mysql-port",
        env = "MYSQL_PORT",
        default_value_t = 3306
    )]
    pub port: u16,
    /// MySQL database
    #[arg(
        id = "mysql-db",
        long = "mysql-db",
        env = "MYSQL_DB",
        default_value = "mysql_finals_db"
    )]
    pub database: String,
    /// MySQL user (the password comes from MYSQL_PASSWORD)
    #[arg(
        id = "mysql-user",
        long = "mysql-user",
        env = "MYSQL_USER",
        default_value = "finals_user"
    )]
    pub user: String,
}

impl MysqlSettings {
    /// The variable holding the password (see [`PostgresSettings::PASSWORD_ENV`]).
    pub const PASSWORD_ENV: &'static str = "MYSQL_PASSWORD";

    pub fn validate(&self) -> Result<(), SettingsError> {
        check_identifier("MYSQL_DB", &self.database)
    }

    pub fn password(&self) -> Result<Secret, SettingsError> {
        env_secret(Self::PASSWORD_ENV)
    }

    pub fn describe(&self) -> String {
        format!(
            "MySQL {}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    pub fn connect_options(&self) -> Result<MySqlConnectOptions, SettingsError> {
        self.validate()?;
        Ok(MySqlConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(self.password()?.expose())
            .database(&self.database))
    }

    /// JDBC URL as the Spark cluster sees it. `rewriteBatchedStatements` turns JDBC
    /// batches into multi-row INSERTs, the main lever for write speed.
    pub fn jdbc_url(&self) -> String {
        format!(
            "jdbc:mysql://{}:{}/{}?rewriteBatchedStatements=true&useSSL=false&allowPublicKeyRetrieval=true&connectionTimeZone=UTC&forceConnectionTimeZoneToSession=true",
            self.host, self.port, self.database
        )
    }
}

#[derive(Debug, Clone, Args)]
pub struct KafkaSettings {
    /// Kafka bootstrap servers
    #[arg(
        id = "kafka-bootstrap-servers",
        long = "kafka-bootstrap-servers",
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,
    /// Topic of the user registration events
    #[arg(
        id = "kafka-topic",
        long = "kafka-topic",
        env = "KAFKA_TOPIC",
        default_value = "new_user_events"
    )]
    pub topic: String,
}

impl KafkaSettings {
    /// Base client settings; callers add producer or consumer specifics.
    pub fn client_config(&self, timeout: Duration) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", "finals-platform")
            .set("socket.timeout.ms", timeout.as_millis().to_string())
            .set("message.timeout.ms", timeout.as_millis().to_string());
        cfg
    }
}

#[derive(Debug, Clone, Args)]
pub struct SparkSettings {
    /// Spark Connect endpoint (the token comes from SPARK_CONNECT_TOKEN)
    #[arg(
        id = "spark-remote",
        long = "spark-remote",
        env = "SPARK_REMOTE",
        default_value = "sc://localhost:15002"
    )]
    pub remote: String,
}

impl SparkSettings {
    /// The variable holding the token the Spark Connect server requires.
    pub const TOKEN_ENV: &'static str = "SPARK_CONNECT_TOKEN";

    /// The endpoint without credentials, for messages and logs.
    pub fn endpoint(&self) -> String {
        let (base, params) = self.split();
        let kept: Vec<&str> = params
            .iter()
            .copied()
            .filter(|p| !p.starts_with("token="))
            .collect();
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}/;{}", kept.join(";"))
        }
    }

    /// The token: SPARK_CONNECT_TOKEN, else a `token=` parameter of the remote (as
    /// Airflow's `spark_connect` connection renders it). Only URL-safe characters,
    /// since it travels inside the connection string.
    pub fn token(&self) -> Result<Option<Secret>, SettingsError> {
        let token = match std::env::var(Self::TOKEN_ENV) {
            Ok(t) if !t.is_empty() => Some(t),
            _ => self
                .split()
                .1
                .iter()
                .find_map(|p| p.strip_prefix("token="))
                .map(str::to_string),
        };
        match token {
            Some(t)
                if !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)) =>
            {
                Err(SettingsError::BadToken(Self::TOKEN_ENV))
            }
            t => Ok(t.map(Secret::new)),
        }
    }

    /// `sc://host:port` and its `;`-separated parameters.
    fn split(&self) -> (&str, Vec<&str>) {
        let remote = self.remote.trim_end_matches('/');
        match remote.split_once("/;") {
            Some((base, params)) => (base, params.split(';').filter(|p| !p.is_empty()).collect()),
            None => (remote, Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(check_identifier("X", "postgres_finals_schema").is_ok());
        assert!(check_identifier("X", "_a1").is_ok());
        for bad in [
            "",
            "1abc",
            "a-b",
            "a;drop table users",
            "a b",
            "\"a\"",
            &"a".repeat(65),
        ] {
            assert!(check_identifier("X", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_spark_endpoint_never_shows_the_token() {
        let s = SparkSettings {
            remote: "sc://h:15002/;token=abc;user_id=me".into(),
        };
        assert_eq!(s.endpoint(), "sc://h:15002/;user_id=me");
        let plain = SparkSettings {
            remote: "sc://h:15002/".into(),
        };
        assert_eq!(plain.endpoint(), "sc://h:15002");
    }

    #[test]
    fn jdbc_urls_carry_no_credentials() {
        let pg = PostgresSettings {
            host: "db".into(),
            port: 5433,
            database: "d".into(),
            schema: "s".into(),
            user: "u".into(),
        };
        assert_eq!(
            pg.jdbc_url(),
            "jdbc:postgresql://db:5433/d?currentSchema=s&ApplicationName=finals-platform-spark"
        );
        let my = MysqlSettings {
            host: "m".into(),
            port: 3307,
            database: "d".into(),
            user: "u".into(),
        };
        assert!(my.jdbc_url().starts_with("jdbc:mysql://m:3307/d?"));
        assert!(!my.jdbc_url().contains("password"));
        assert!(!pg.jdbc_url().contains("password"));
    }
}
