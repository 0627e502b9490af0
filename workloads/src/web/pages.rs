//! The customer pages (issue #5). Until they land, `/` says so honestly.

use axum::response::Html;

pub async fn index() -> Html<&'static str> {
    Html(include_str!("placeholder.html"))
}
