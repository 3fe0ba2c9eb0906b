//! Pure, seeded generation of the e-commerce data set, in memory.
//!
//! Consistent by construction: ids are 1..=n in every table, every foreign key points
//! at an existing row, `order_details.total_price = quantity * price_per_unit` (the
//! product's price), `orders.total_amount` is the sum of its lines, and e-mails are
//! unique because they contain the user id. Money is kept in integer cents.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use common::schema::{LOYALTY_STATUSES, ORDER_COMPLETED, ORDER_PENDING};
use fake::Fake;
use fake::faker::lorem::en::Sentence;
use fake::faker::name::en::{FirstName, LastName};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Row counts per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volumes {
    pub users: usize,
    pub products: usize,
    pub orders: usize,
    pub order_details: usize,
    /// Product categories (10 predefined top categories, then random ones)
    pub categories: usize,
}

/// The default data set's volumes (the `.env` defaults).
pub const DEFAULT_VOLUMES: Volumes = Volumes {
    users: 5000,
    products: 500,
    orders: 10000,
    order_details: 40000,
    categories: 5000,
};

impl Default for Volumes {
    fn default() -> Self {
        DEFAULT_VOLUMES
    }
}

impl Volumes {
    pub fn total(&self) -> usize {
        self.users + self.products + self.orders + self.order_details + self.categories
    }

    /// Every volume times `factor` (for benchmarks).
    pub fn scaled(&self, factor: usize) -> Self {
        Self {
            users: self.users * factor,
            products: self.products * factor,
            orders: self.orders * factor,
            order_details: self.order_details * factor,
            categories: self.categories * factor,
        }
    }

    /// Children need parents: orders need users, products need categories, lines need
    /// orders and products. Ids are INTEGER, so volumes must fit in an i32.
    pub fn check(&self) -> Result<(), VolumeError> {
        let need = |child: usize, parent: usize, c: &'static str, p: &'static str| {
            if child > 0 && parent == 0 {
                Err(VolumeError::MissingParent {
                    child: c,
                    parent: p,
                })
            } else {
                Ok(())
            }
        };
        need(self.orders, self.users, "orders", "users")?;
        need(self.products, self.categories, "products", "categories")?;
        need(self.order_details, self.orders, "order details", "orders")?;
        need(
            self.order_details,
            self.products,
            "order details",
            "products",
        )?;
        for (name, n) in [
            ("users", self.users),
            ("products", self.products),
            ("orders", self.orders),
            ("order details", self.order_details),
            ("categories", self.categories),
        ] {
            if n > i32::MAX as usize {
                return Err(VolumeError::TooMany { name, n });
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("bad volumes: {child} need {parent}, but the number of {parent} is 0")]
    MissingParent {
        child: &'static str,
        parent: &'static str,
    },
    #[error("bad volumes: {n} {name} do not fit in an INTEGER id")]
    TooMany { name: &'static str, n: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i32,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub registration_date: NaiveDateTime,
    /// One of `common::schema::LOYALTY_STATUSES`.
    pub loyalty_status: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub id: i32,
    pub name: String,
    pub parent_id: Option<i32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: i32,
    pub name: String,
    pub description: String,
    pub category_id: i32,
    pub price_cents: i64,
    pub stock_quantity: i32,
    pub creation_date: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: i32,
    pub user_id: i32,
    pub order_date: NaiveDateTime,
    pub total_cents: i64,
    /// One of `common::schema::ORDER_STATUSES`.
    pub status: &'static str,
    pub delivery_date: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderDetail {
    pub id: i32,
    pub order_id: i32,
    pub product_id: i32,
    pub quantity: i32,
    pub price_per_unit_cents: i64,
    pub total_price_cents: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataSet {
    pub users: Vec<User>,
    pub categories: Vec<Category>,
    pub products: Vec<Product>,
    pub orders: Vec<Order>,
    pub order_details: Vec<OrderDetail>,
}

impl DataSet {
    pub fn rows(&self) -> usize {
        self.users.len()
            + self.categories.len()
            + self.products.len()
            + self.orders.len()
            + self.order_details.len()
    }
}

/// The 10 top categories every data set starts with (ids 1..=10).
pub const TOP_CATEGORIES: [&str; 10] = [
    "Electronics",
    "Books",
    "Clothing",
    "Home & Kitchen",
    "Sports & Outdoors",
    "Toys & Games",
    "Beauty & Health",
    "Automotive",
    "Garden",
    "Grocery",
];

const ADJECTIVES: [&str; 24] = [
    "Smart",
    "Classic",
    "Portable",
    "Wireless",
    "Vintage",
    "Eco",
    "Premium",
    "Compact",
    "Deluxe",
    "Ergonomic",
    "Rustic",
    "Modern",
    "Ultra",
    "Lightweight",
    "Heavy-Duty",
    "Organic",
    "Handmade",
    "Digital",
    "Outdoor",
    "Kids",
    "Pro",
    "Travel",
    "Mini",
    "Family",
];
const MATERIALS: [&str; 12] = [
    "Cotton",
    "Steel",
    "Wooden",
    "Leather",
    "Ceramic",
    "Glass",
    "Bamboo",
    "Aluminium",
    "Wool",
    "Plastic",
    "Silk",
    "Copper",
];
const NOUNS: [&str; 32] = [
    "Headphones",
    "Lamp",
    "Backpack",
    "Jacket",
    "Blender",
    "Chair",
    "Watch",
    "Notebook",
    "Speaker",
    "Kettle",
    "Sneakers",
    "Tent",
    "Puzzle",
    "Camera",
    "Mug",
    "Scarf",
    "Drill",
    "Bicycle",
    "Pillow",
    "Keyboard",
    "Novel",
    "Cookbook",
    "Sunglasses",
    "Bottle",
    "Charger",
    "Helmet",
    "Rug",
    "Vase",
    "Candle",
    "Board Game",
    "Shampoo",
    "Toolbox",
];
const EMAIL_DOMAINS: [&str; 4] = ["example.com", "example.org", "example.net", "mail.example"];

/// Per-table random streams: changing one volume does not reshuffle the other tables.
fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

fn pick<'a, R: RngExt>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Cuts to at most `max` characters (the DDL's VARCHAR limits count characters).
fn truncate(mut s: String, max: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
    s
}

fn email_part(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(30)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A uniformly random second in `[from, to)`; `from` when the range is empty.
fn between<R: RngExt>(rng: &mut R, from: NaiveDateTime, to: NaiveDateTime) -> NaiveDateTime {
    let secs = (to - from).num_seconds();
    if secs <= 0 {
        return from;
    }
    from + Duration::seconds(rng.random_range(0..secs))
}

/// Generates the whole data set. Pure: the same arguments give the same data.
pub fn generate(volumes: &Volumes, seed: u64, as_of: NaiveDate) -> Result<DataSet, VolumeError> {
    volumes.check()?;
    let now = as_of.and_hms_opt(0, 0, 0).unwrap_or_default();
    let users = users(volumes.users, &mut rng_for(seed, 1), now);
    let categories = categories(volumes.categories, &mut rng_for(seed, 2));
    let products = products(
        volumes.products,
        volumes.categories,
        &mut rng_for(seed, 3),
        now,
    );
    let (orders, order_details) = orders(
        volumes.orders,
        volumes.order_details,
        &users,
        &products,
        &mut rng_for(seed, 4),
        now,
    );
    Ok(DataSet {
        users,
        categories,
        products,
        orders,
        order_details,
    })
}

fn users(n: usize, rng: &mut ChaCha8Rng, now: NaiveDateTime) -> Vec<User> {
    let start = now - Duration::days(3 * 365);
    let end = now - Duration::days(1);
    (1..=n as i32)
        .map(|id| {
            let first_name = truncate(FirstName().fake_with_rng::<String, _>(rng), 50);
            let last_name = truncate(LastName().fake_with_rng::<String, _>(rng), 50);
            let email = truncate(
                format!(
                    "{}.{}.{id}@{}",
                    email_part(&first_name),
                    email_part(&last_name),
                    pick(rng, &EMAIL_DOMAINS)
                ),
                100,
            );
            let phone = format!(
                "+1-{}-{:03}-{:04}",
                rng.random_range(201..990),
                rng.random_range(0..1000),
                rng.random_range(0..10000)
            );
            User {
                id,
                first_name,
                last_name,
                email,
                phone,
                registration_date: between(rng, start, end),
                loyalty_status: LOYALTY_STATUSES[rng.random_range(0..LOYALTY_STATUSES.len())],
            }
        })
        .collect()
}

/// The predefined top categories first, then random ones; half of the random ones are
/// children of an earlier category (so a parent always precedes its children).
fn categories(n: usize, rng: &mut ChaCha8Rng) -> Vec<Category> {
    (1..=n as i32)
        .map(|id| {
            let i = (id - 1) as usize;
            if i < TOP_CATEGORIES.len() {
                return Category {
                    id,
                    name: TOP_CATEGORIES[i].to_string(),
                    parent_id: None,
                };
            }
            let name = format!("{} {}", pick(rng, &ADJECTIVES), pick(rng, &NOUNS));
            let parent_id = i.is_multiple_of(2).then(|| rng.random_range(1..id));
            Category {
                id,
                name,
                parent_id,
            }
        })
        .collect()
}

fn products(n: usize, categories: usize, rng: &mut ChaCha8Rng, now: NaiveDateTime) -> Vec<Product> {
    let start = now - Duration::days(2 * 365);
    (1..=n as i32)
        .map(|id| {
            let name = format!(
                "{} {} {}",
                pick(rng, &ADJECTIVES),
                pick(rng, &MATERIALS),
                pick(rng, &NOUNS)
            );
            Product {
                id,
                name: truncate(name, 100),
                description: Sentence(6..14).fake_with_rng::<String, _>(rng),
                category_id: rng.random_range(1..=categories as i32),
                price_cents: rng.random_range(1000..=10000),
                stock_quantity: rng.random_range(0..=1000),
                creation_date: between(rng, start, now),
            }
        })
        .collect()
}

/// Orders fall in the year before `now` (and after the user registered); delivery is
/// 1-14 days after the order. Lines: every order gets one, the rest are spread at
/// random; an order's total is the sum of its lines.
fn orders(
    n_orders: usize,
    n_lines: usize,
    users: &[User],
    products: &[Product],
    rng: &mut ChaCha8Rng,
    now: NaiveDateTime,
) -> (Vec<Order>, Vec<OrderDetail>) {
    let year_ago = now - Duration::days(365);
    let mut lines_per_order = vec![0u32; n_orders];
    for i in 0..n_lines {
        let o = if i < n_orders {
            i
        } else {
            rng.random_range(0..n_orders)
        };
        lines_per_order[o] += 1;
    }
    let mut orders = Vec::with_capacity(n_orders);
    let mut details = Vec::with_capacity(n_lines);
    for (i, &lines) in lines_per_order.iter().enumerate() {
        let id = i as i32 + 1;
        let user = &users[rng.random_range(0..users.len())];
        let order_date = between(rng, year_ago.max(user.registration_date), now);
        let delivery_date = order_date
            + Duration::days(rng.random_range(1..=14))
            + Duration::seconds(rng.random_range(0..86_400));
        let status = if delivery_date <= now && rng.random_bool(0.95) {
            ORDER_COMPLETED
        } else {
            ORDER_PENDING
        };
        let mut total_cents = 0;
        for _ in 0..lines {
            let product = &products[rng.random_range(0..products.len())];
            let quantity = rng.random_range(1..=10);
            let total_price_cents = product.price_cents * i64::from(quantity);
            total_cents += total_price_cents;
            details.push(OrderDetail {
                id: details.len() as i32 + 1,
                order_id: id,
                product_id: product.id,
                quantity,
                price_per_unit_cents: product.price_cents,
                total_price_cents,
            });
        }
        orders.push(Order {
            id,
            user_id: user.id,
            order_date,
            total_cents,
            status,
            delivery_date,
        });
    }
    (orders, details)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let v = Volumes::default().scaled(1);
        let a = generate(&v, 7, day()).unwrap();
        assert_eq!(a, generate(&v, 7, day()).unwrap());
        assert_ne!(a, generate(&v, 8, day()).unwrap());
    }

    #[test]
    fn exact_counts_and_consistent_totals() {
        let v = Volumes::default();
        let d = generate(&v, 1, day()).unwrap();
        assert_eq!(d.users.len(), v.users);
        assert_eq!(d.categories.len(), v.categories);
        assert_eq!(d.products.len(), v.products);
        assert_eq!(d.orders.len(), v.orders);
        assert_eq!(d.order_details.len(), v.order_details);
        let mut sums: HashMap<i32, i64> = HashMap::new();
        for l in &d.order_details {
            let p = &d.products[(l.product_id - 1) as usize];
            assert_eq!(l.price_per_unit_cents, p.price_cents);
            assert_eq!(
                l.total_price_cents,
                l.price_per_unit_cents * i64::from(l.quantity)
            );
            assert!((1..=10).contains(&l.quantity));
            *sums.entry(l.order_id).or_default() += l.total_price_cents;
        }
        for o in &d.orders {
            assert_eq!(o.total_cents, sums[&o.id], "order {}", o.id);
            assert!(o.delivery_date > o.order_date);
            assert!(o.order_date >= day().and_hms_opt(0, 0, 0).unwrap() - Duration::days(365));
            assert!((1..=v.users as i32).contains(&o.user_id));
        }
        for p in &d.products {
            assert!((1000..=10000).contains(&p.price_cents));
            assert!((1..=v.categories as i32).contains(&p.category_id));
        }
    }

    #[test]
    fn categories_have_the_seed_shape() {
        let d = generate(&Volumes::default(), 3, day()).unwrap();
        let names: Vec<_> = d.categories[..10].iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, TOP_CATEGORIES);
        assert!(d.categories[..10].iter().all(|c| c.parent_id.is_none()));
        let random = &d.categories[10..];
        let children = random.iter().filter(|c| c.parent_id.is_some()).count();
        assert_eq!(children, random.len() / 2);
        assert!(random.iter().all(|c| c.parent_id.is_none_or(|p| p < c.id)));
    }

    #[test]
    fn unique_emails_and_column_limits() {
        let d = generate(&Volumes::default().scaled(2), 5, day()).unwrap();
        let emails: HashSet<_> = d.users.iter().map(|u| &u.email).collect();
        assert_eq!(emails.len(), d.users.len());
        for u in &d.users {
            assert!(u.first_name.chars().count() <= 50 && u.last_name.chars().count() <= 50);
            assert!(u.email.len() <= 100 && u.email.contains('@'));
            assert!(u.phone.len() <= 20);
        }
        assert!(d.products.iter().all(|p| p.name.chars().count() <= 100));
    }

    #[test]
    fn volumes_are_checked() {
        let v = Volumes {
            users: 0,
            ..Volumes::default()
        };
        assert!(generate(&v, 1, day()).is_err());
        let empty = Volumes {
            users: 0,
            products: 0,
            orders: 0,
            order_details: 0,
            categories: 0,
        };
        assert_eq!(generate(&empty, 1, day()).unwrap().rows(), 0);
    }
}
