//! HTTP plumbing for the server: response bodies, API errors, query strings
//! and streaming request bodies to disk.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::error::ErrorCode;
use crate::reference::Hasher;

pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;
pub(crate) type Resp = Response<Body>;

pub(crate) fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

pub(crate) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

/// Stream a reader as the response body in chunks of `chunk` bytes.
pub(crate) fn stream<R: AsyncRead + Send + 'static>(r: R, chunk: usize) -> Body {
    let s = tokio_util::io::ReaderStream::with_capacity(r, chunk).map_ok(Frame::data);
    BodyExt::boxed_unsync(StreamBody::new(s))
}

/// Build a response with headers.
pub(crate) fn response(status: StatusCode, headers: &[(&str, String)], body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(*k), HeaderValue::try_from(v.as_str())) {
            h.append(k, v);
        }
    }
    r
}

pub(crate) fn json_response(
    status: StatusCode,
    headers: &[(&str, String)],
    v: &serde_json::Value,
) -> Resp {
    let body = serde_json::to_vec(v).expect("json serialises");
    let mut hs = vec![
        ("Content-Type", "application/json".to_string()),
        ("Content-Length", body.len().to_string()),
    ];
    hs.extend(headers.iter().cloned());
    response(status, &hs, full(body))
}

/// An error answered with the spec's JSON error body.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    /// `None` for internal errors (answered with code `UNKNOWN`).
    pub code: Option<ErrorCode>,
    pub message: String,
    pub detail: serde_json::Value,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(code.status()).expect("valid status"),
            code: Some(code),
            message: code.message().to_string(),
            detail: serde_json::Value::Null,
            headers: Vec::new(),
        }
    }
    pub(crate) fn msg(mut self, m: impl Into<String>) -> Self {
        self.message = m.into();
        self
    }
    pub(crate) fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = d;
        self
    }
    pub(crate) fn status(mut self, s: u16) -> Self {
        self.status = StatusCode::from_u16(s).expect("valid status");
        self
    }
    pub(crate) fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: None,
            message: e.to_string(),
            detail: serde_json::Value::Null,
            headers: Vec::new(),
        }
    }

    pub(crate) fn into_response(self, head: bool) -> Resp {
        let mut err = serde_json::json!({
            "code": self.code.map(|c| c.as_str()).unwrap_or("UNKNOWN"),
            "message": self.message,
        });
        if !self.detail.is_null() {
            err["detail"] = self.detail;
        }
        let mut r = json_response(
            self.status,
            &self.headers,
            &serde_json::json!({ "errors": [err] }),
        );
        if head {
            *r.body_mut() = empty();
        }
        r
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::internal(e)
    }
}

/// Decoded query parameters, in order (a key may repeat).
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Query {
        let mut v = Vec::new();
        for part in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, val) = part.split_once('=').unwrap_or((part, ""));
            v.push((decode_query(k), decode_query(val)));
        }
        Query(v)
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str())
    }
    pub(crate) fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(a, _)| a == k)
            .map(|(_, b)| b.as_str())
            .collect()
    }
}

fn decode_query(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encode a value for a query string.
pub(crate) fn encode_query(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/')
        .remove(b':');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Read a whole request body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(mut body: Incoming, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(ErrorCode::BlobUploadInvalid).msg(format!("reading request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(ApiError::new(ErrorCode::SizeInvalid)
                    .status(413)
                    .msg(format!("request body larger than {limit} bytes")));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Copy a request body to `w`, hashing it when `hasher` is given; returns the
/// number of bytes written.
pub(crate) async fn copy_body<W: tokio::io::AsyncWrite + Unpin>(
    mut body: Incoming,
    w: &mut W,
    mut hasher: Option<&mut Hasher>,
) -> Result<u64, ApiError> {
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(ErrorCode::BlobUploadInvalid).msg(format!("reading request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&data);
            }
            w.write_all(&data).await?;
            n += data.len() as u64;
        }
    }
    w.flush().await?;
    Ok(n)
}
