//! Form bodies as typed structs: one `#[derive(Deserialize)]` struct per form, its fields
//! named as the HTML names them, repeated fields (checkbox lists) as `Vec`. The struct holds
//! strings; a conversion into a domain input checks them and says what is wrong at the field.

use axum::extract::rejection::RawFormRejection;
use axum::extract::{FromRequest, Request};
use axum_extra::extract::FormRejection;
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, SeqAccess, Visitor};

use crate::web::error::AppError;

/// A urlencoded form body deserialized into `T` by axum-extra's `Form` (which keeps repeated
/// keys), refused as our pages refuse a bad form.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum_extra::extract::Form::<T>::from_request(req, state).await {
            Ok(axum_extra::extract::Form(value)) => Ok(Self(value)),
            Err(FormRejection::RawFormRejection(RawFormRejection::InvalidFormContentType(_))) => {
                Err(AppError::Validation("Expected a form.".into()))
            }
            Err(_) => Err(unreadable()),
        }
    }
}

/// Parses a urlencoded form held elsewhere (a multipart part) as [`Form`] parses a body.
pub fn parse<T: DeserializeOwned>(text: &[u8]) -> Result<T, AppError> {
    serde_html_form::from_bytes(text).map_err(|_| unreadable())
}

/// The ids among ticked values, at most `limit`; anything else (a hand-made value) is passed
/// over, as no checkbox of ours carries it.
pub fn uuids(values: &[String], limit: usize) -> Vec<uuid::Uuid> {
    values
        .iter()
        .filter_map(|s| uuid::Uuid::parse_str(s).ok())
        .take(limit)
        .collect()
}

fn unreadable() -> AppError {
    AppError::Validation("The form could not be read.".into())
}

/// For a single-valued field (`#[serde(default, deserialize_with = "first")]`): the first
/// value when a hand-made request repeats the name, as a browser never does, rather than a
/// refusal of the whole form.
pub fn first<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a text field")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }

        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
            let first = seq.next_element::<String>()?.unwrap_or_default();
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_any(First)
}

/// A form's name/value pairs as a page shows them again or re-posts them (the profile page,
/// the "end these sessions?" confirmation), made from a typed form's `echo`. Repeated names
/// are kept.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The fields of a typed form, posted again: each single field, then every value of each
    /// repeated one, in order.
    pub fn of(single: &[(&str, &String)], repeated: &[(&str, &Vec<String>)]) -> Self {
        let singles = single.iter().map(|(k, v)| ((*k).to_owned(), (*v).clone()));
        let lists = repeated
            .iter()
            .flat_map(|(k, list)| list.iter().map(|v| ((*k).to_owned(), v.clone())));
        Self(singles.chain(lists).collect())
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.first(name).unwrap_or("")
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "first")]
        name: String,
        #[serde(default)]
        id: Vec<String>,
    }

    #[test]
    fn repeated_names_become_a_list_and_a_single_field_keeps_the_first() {
        let s: Sample = parse(b"name=a&id=1&name=b&id=2&csrf_token=x").unwrap();
        assert_eq!(s.name, "a");
        assert_eq!(s.id, ["1", "2"]);
    }

    #[test]
    fn fields_keep_every_value_of_a_name_in_order() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let f = Fields(vec![
            pair("a", "1"),
            pair("b", "2"),
            pair("a", "3"),
            pair("c", ""),
        ]);
        assert_eq!(f.all("a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(f.text("b"), "2");
        assert_eq!(f.first("c"), Some(""));
        assert_eq!(f.first("d"), None);
    }

    #[test]
    fn absent_fields_are_empty() {
        let s: Sample = parse(b"").unwrap();
        assert_eq!(s.name, "");
        assert!(s.id.is_empty());
    }

    async fn extract(content_type: &str, body: &'static str) -> Result<Sample, AppError> {
        let req = Request::post("/")
            .header(axum::http::header::CONTENT_TYPE, content_type)
            .body(axum::body::Body::from(body))
            .unwrap();
        Form::<Sample>::from_request(req, &())
            .await
            .map(|Form(s)| s)
    }

    #[tokio::test]
    async fn a_body_that_is_no_form_is_refused_as_today() {
        let Err(AppError::Validation(m)) = extract("application/json", "{}").await else {
            panic!("accepted");
        };
        assert_eq!(m, "Expected a form.");
        let s = extract(
            "application/x-www-form-urlencoded; charset=UTF-8",
            "name=%C3%A9",
        )
        .await
        .unwrap();
        assert_eq!(s.name, "é");
    }
}
