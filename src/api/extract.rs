//! Extractors whose failures are [`ApiError`]s, so that a bad body, query or path gets the same
//! envelope as every other error, and query parameters parsed into domain types with the name of
//! the parameter at fault.

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use chrono::NaiveDate;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::store::TenantId;

/// A JSON request body. Any content type is accepted: the body either parses or it is a 400.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await?;
        Ok(JsonBody(serde_json::from_slice(&bytes)?))
    }
}

/// A raw request body (a statement or records file), within the route's body limit.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(RawBody(Bytes::from_request(req, state).await?))
    }
}

/// Query parameters.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiQuery(Query::try_from_uri(&parts.uri)?.0))
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiPath(Path::<T>::from_request_parts(parts, state).await?.0))
    }
}

/// Who is calling: set by the authentication layer on every authenticated route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the key belongs to; every store call is scoped to it.
    pub tenant: TenantId,
    /// The key's public id, for logs and audit trails.
    pub key_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Without the layer there is no caller: refuse rather than serve unscoped.
        parts.extensions.get::<Caller>().cloned().ok_or(ApiError::Unauthorized)
    }
}

/// Parses an optional query parameter with `FromStr`, naming the parameter on failure.
pub fn param<T>(name: &str, value: Option<&str>) -> Result<Option<T>, ApiError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value
        .filter(|v| !v.is_empty())
        .map(|v| T::from_str(v).map_err(|e| ApiError::invalid_parameter(name, format!("invalid `{name}`: {e}"))))
        .transpose()
}

/// Parses an optional `YYYY-MM-DD` query parameter.
pub fn date_param(name: &str, value: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                ApiError::invalid_parameter(name, format!("invalid `{name}` {v:?}: expected a date as YYYY-MM-DD"))
            })
        })
        .transpose()
}

/// Checks that `from` is not after `to`.
pub fn date_range(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<(), ApiError> {
    match (from, to) {
        (Some(f), Some(t)) if f > t => {
            Err(ApiError::invalid_parameter("from", format!("`from` {f} is after `to` {t}")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_date_is_refused_naming_the_parameter() {
        let err = date_param("from", Some("2024-02-30")).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { ref details, .. } if details["field"] == "from"), "{err:?}");
        assert_eq!(date_param("to", Some("2024-02-29")).unwrap(), NaiveDate::from_ymd_opt(2024, 2, 29));
        assert_eq!(date_param("to", None).unwrap(), None);
    }

    #[test]
    fn a_range_that_ends_before_it_starts_is_refused() {
        let d = |day| NaiveDate::from_ymd_opt(2024, 3, day);
        assert!(date_range(d(2), d(1)).is_err());
        assert!(date_range(d(1), d(1)).is_ok());
        assert!(date_range(None, d(1)).is_ok());
    }

    #[test]
    fn a_parameter_that_does_not_parse_is_refused_with_its_reason() {
        let err = param::<crate::store::ItemStatus>("status", Some("done")).unwrap_err();
        assert!(err.to_string().contains("status"), "{err}");
    }
}
