//! The endpoints of the distribution spec.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt, BufWriter};

use super::http::{
    copy_body, empty, encode_query, full, json_response, read_limited, response, stream, ApiError,
    Query, Resp,
};
use super::{status, token_grants, Access, Route, State, TokenScope, TOKEN_SERVICE};
use crate::error::ErrorCode;
use crate::manifest::{self, ParsedManifest};
use crate::reference::{is_valid_name, is_valid_tag, Algorithm, Digest, Hasher, Reference};
use crate::storage::{hash_file, is_valid_upload_id, Storage};

/// Size of the chunks blob downloads are streamed in.
const STREAM_CHUNK: usize = 256 * 1024;
/// Write buffer for uploads.
const WRITE_BUF: usize = 1 << 20;

/// In-memory state of upload sessions: the running hash of what was
/// written so far. A session whose state was lost (restart, failed chunk)
/// is re-hashed from its data file when it is closed.
#[derive(Default)]
pub(crate) struct Uploads {
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Hasher>>>>>,
}

impl Uploads {
    fn get(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<Hasher>>> {
        self.sessions
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default()
            .clone()
    }
    fn insert(&self, id: &str, h: Hasher) {
        self.sessions
            .lock()
            .unwrap()
            .insert(id.to_string(), Arc::new(tokio::sync::Mutex::new(Some(h))));
    }
    fn remove(&self, id: &str) {
        self.sessions.lock().unwrap().remove(id);
    }
}

/// Run blocking file system work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(e)),
    }
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse().map_err(|_| {
        ApiError::new(ErrorCode::DigestInvalid)
            .msg(format!("invalid digest {s:?}"))
            .detail(json!({ "digest": s }))
    })
}

fn parse_reference(s: &str) -> Result<Reference, ApiError> {
    Reference::parse(s).ok_or_else(|| {
        if s.contains(':') {
            ApiError::new(ErrorCode::DigestInvalid).detail(json!({ "digest": s }))
        } else {
            ApiError::new(ErrorCode::ManifestInvalid)
                .msg(format!("invalid tag {s:?}"))
                .detail(json!({ "tag": s }))
        }
    })
}

fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::Unsupported).msg("method not allowed")
}

pub(crate) async fn dispatch(
    state: &Arc<State>,
    req: Request<Incoming>,
    route: Route,
    access: Access,
) -> Result<Resp, ApiError> {
    let m = req.method().clone();
    let query = Query::parse(req.uri().query());
    match route {
        Route::Base => match m {
            Method::GET | Method::HEAD => Ok(json_response(StatusCode::OK, &[], &json!({}))),
            _ => Err(method_not_allowed()),
        },
        Route::Catalog => match m {
            Method::GET => catalog(state, &query).await,
            _ => Err(method_not_allowed()),
        },
        Route::Tags { name } => match m {
            Method::GET => tags_list(state, &name, &query).await,
            _ => Err(method_not_allowed()),
        },
        Route::Manifest { name, reference } => {
            let r = parse_reference(&reference)?;
            match m {
                Method::GET | Method::HEAD => {
                    get_manifest(state, &name, r, m == Method::HEAD).await
                }
                Method::PUT => put_manifest(state, req, &name, r, &query).await,
                Method::DELETE => delete_manifest(state, &name, r).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::Blob { name, digest } => {
            let d = parse_digest(&digest)?;
            match m {
                Method::GET | Method::HEAD => {
                    get_blob(state, &req, &name, d, m == Method::HEAD).await
                }
                Method::DELETE => delete_blob(state, &name, d).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::UploadStart { name } => match m {
            Method::POST => start_upload(state, req, &name, &query, &access).await,
            _ => Err(method_not_allowed()),
        },
        Route::Upload { name, id } => {
            if !is_valid_upload_id(&id) {
                return Err(ApiError::new(ErrorCode::BlobUploadUnknown));
            }
            let owner = {
                let st = state.storage.clone();
                let id = id.clone();
                blocking(move || st.upload_repo(&id)).await?
            };
            if owner.as_deref() != Some(name.as_str()) {
                return Err(ApiError::new(ErrorCode::BlobUploadUnknown));
            }
            match m {
                Method::GET => upload_status(state, &name, &id).await,
                Method::PATCH => patch_upload(state, req, &name, &id).await,
                Method::PUT => put_upload(state, req, &name, &id, &query).await,
                Method::DELETE => cancel_upload(state, &id).await,
                _ => Err(method_not_allowed()),
            }
        }
        Route::Referrers { name, digest } => match m {
            Method::GET => referrers(state, &name, &digest, &query).await,
            _ => Err(method_not_allowed()),
        },
    }
}

// ---------------------------------------------------------------- discovery

/// Apply `n`/`last` pagination; returns the page and whether more follow.
fn paginate(all: Vec<String>, q: &Query) -> Result<(Vec<String>, Option<usize>, bool), ApiError> {
    let n = match q.get("n") {
        None | Some("") => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::new(ErrorCode::Unsupported)
                .status(400)
                .msg(format!("invalid n {s:?}"))
        })?),
    };
    let mut items: Vec<String> = match q.get("last") {
        Some(last) if !last.is_empty() => all.into_iter().filter(|t| t.as_str() > last).collect(),
        _ => all,
    };
    let mut more = false;
    if let Some(n) = n {
        if items.len() > n {
            items.truncate(n);
            more = n > 0;
        }
    }
    Ok((items, n, more))
}

async fn catalog(state: &Arc<State>, q: &Query) -> Result<Resp, ApiError> {
    let st = state.storage.clone();
    let all = blocking(move || st.list_repos()).await?;
    let (page, n, more) = paginate(all, q)?;
    let mut headers = Vec::new();
    if let (true, Some(n), Some(last)) = (more, n, page.last()) {
        headers.push((
            "Link",
            format!(
                "</v2/_catalog?n={n}&last={}>; rel=\"next\"",
                encode_query(last)
            ),
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        &headers,
        &json!({ "repositories": page }),
    ))
}

async fn tags_list(state: &Arc<State>, name: &str, q: &Query) -> Result<Resp, ApiError> {
    let st = state.storage.clone();
    let n2 = name.to_string();
    let Some(all) = blocking(move || st.list_tags(&n2)).await? else {
        return Err(ApiError::new(ErrorCode::NameUnknown).detail(json!({ "name": name })));
    };
    let (page, n, more) = paginate(all, q)?;
    let mut headers = Vec::new();
    if let (true, Some(n), Some(last)) = (more, n, page.last()) {
        headers.push((
            "Link",
            format!(
                "</v2/{name}/tags/list?n={n}&last={}>; rel=\"next\"",
                encode_query(last)
            ),
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        &headers,
        &json!({ "name": name, "tags": page }),
    ))
}

async fn referrers(
    state: &Arc<State>,
    name: &str,
    digest: &str,
    q: &Query,
) -> Result<Resp, ApiError> {
    let subject = parse_digest(digest)?;
    let st = state.storage.clone();
    let n2 = name.to_string();
    let mut list = blocking(move || st.list_referrers(&n2, &subject)).await?;
    let mut headers = vec![("Content-Type", manifest::OCI_INDEX.to_string())];
    if let Some(at) = q.get("artifactType").filter(|s| !s.is_empty()) {
        list.retain(|d| d.get("artifactType").and_then(Value::as_str) == Some(at));
        headers.push(("OCI-Filters-Applied", "artifactType".to_string()));
    }
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": list,
    }))
    .expect("json serialises");
    headers.push(("Content-Length", body.len().to_string()));
    Ok(response(StatusCode::OK, &headers, full(body)))
}

// ---------------------------------------------------------------- manifests

async fn resolve(
    st: &Storage,
    name: &str,
    r: &Reference,
) -> Result<Option<(Digest, String)>, ApiError> {
    let st = st.clone();
    let name = name.to_string();
    let r = r.clone();
    blocking(move || {
        let d = match r {
            Reference::Digest(d) => d,
            Reference::Tag(t) => match st.resolve_tag(&name, &t)? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        Ok(st.get_revision(&name, &d)?.map(|mt| (d, mt)))
    })
    .await
}

fn manifest_unknown(name: &str, r: &Reference) -> ApiError {
    ApiError::new(ErrorCode::ManifestUnknown)
        .msg(format!("manifest unknown: {name}:{r}"))
        .detail(json!({ "name": name, "reference": r.to_string() }))
}

async fn get_manifest(
    state: &Arc<State>,
    name: &str,
    r: Reference,
    head: bool,
) -> Result<Resp, ApiError> {
    let Some((d, media_type)) = resolve(&state.storage, name, &r).await? else {
        return Err(manifest_unknown(name, &r));
    };
    let st = state.storage.clone();
    let d2 = d.clone();
    let Some(bytes) = blocking(move || st.read_blob(&d2)).await? else {
        return Err(manifest_unknown(name, &r));
    };
    let headers = [
        ("Content-Type", media_type),
        ("Content-Length", bytes.len().to_string()),
        ("Docker-Content-Digest", d.to_string()),
        ("ETag", format!("\"{d}\"")),
    ];
    Ok(response(
        StatusCode::OK,
        &headers,
        if head { empty() } else { full(bytes) },
    ))
}

async fn put_manifest(
    state: &Arc<State>,
    req: Request<Incoming>,
    name: &str,
    r: Reference,
    q: &Query,
) -> Result<Resp, ApiError> {
    let content_type = header(&req, "content-type").map(str::to_string);
    let extra_tags: Vec<String> = q.all("tag").into_iter().map(str::to_string).collect();
    for t in &extra_tags {
        if !is_valid_tag(t) {
            return Err(ApiError::new(ErrorCode::ManifestInvalid)
                .msg(format!("invalid tag {t:?}"))
                .detail(json!({ "tag": t })));
        }
    }
    let body = read_limited(req.into_body(), state.cfg.max_manifest_size).await?;
    let parsed: ParsedManifest = manifest::parse(&body, content_type.as_deref())
        .map_err(|m| ApiError::new(ErrorCode::ManifestInvalid).msg(m))?;
    let alg = match &r {
        Reference::Digest(d) => d.algorithm(),
        Reference::Tag(_) => Algorithm::Sha256,
    };
    let digest = alg.digest(&body);
    if let Reference::Digest(want) = &r {
        if *want != digest {
            return Err(ApiError::new(ErrorCode::DigestInvalid)
                .msg(format!("manifest digest {digest} does not match {want}"))
                .detail(json!({ "expected": want.to_string(), "actual": digest.to_string() })));
        }
    }
    let st = state.storage.clone();
    let name_s = name.to_string();
    let tag = match &r {
        Reference::Tag(t) => Some(t.clone()),
        Reference::Digest(_) => None,
    };
    let d2 = digest.clone();
    let size = body.len();
    let tags2 = extra_tags.clone();
    let subject = parsed.subject.clone();
    let result: Result<(), Digest> = blocking(move || {
        // Every referenced blob or manifest must be in this repository.
        for (d, kind) in &parsed.references {
            let present = match kind {
                manifest::RefKind::Blob => st.has_layer(&name_s, d),
                manifest::RefKind::Manifest => st.get_revision(&name_s, d)?.is_some(),
            };
            if !present {
                return Ok(Err(d.clone()));
            }
        }
        let stored = st.put_blob_bytes(d2.algorithm(), &body)?;
        debug_assert_eq!(stored, d2);
        st.put_revision(&name_s, &d2, &parsed.media_type)?;
        if let Some(s) = &parsed.subject {
            st.add_referrer(&name_s, s, &d2, &parsed.referrer_descriptor(&d2, size))?;
        }
        if let Some(t) = &tag {
            st.set_tag(&name_s, t, &d2)?;
        }
        for t in &tags2 {
            st.set_tag(&name_s, t, &d2)?;
        }
        Ok(Ok(()))
    })
    .await?;
    if let Err(missing) = result {
        return Err(ApiError::new(ErrorCode::ManifestBlobUnknown)
            .msg(format!("manifest references unknown blob {missing}"))
            .detail(json!({ "digest": missing.to_string() })));
    }
    let mut headers = vec![
        ("Location", format!("/v2/{name}/manifests/{digest}")),
        ("Docker-Content-Digest", digest.to_string()),
        ("Content-Length", "0".to_string()),
    ];
    if let Some(s) = subject {
        headers.push(("OCI-Subject", s.to_string()));
    }
    if !extra_tags.is_empty() && matches!(r, Reference::Digest(_)) {
        headers.push(("OCI-Tag", extra_tags.join(", ")));
    }
    Ok(response(StatusCode::CREATED, &headers, empty()))
}

async fn delete_manifest(state: &Arc<State>, name: &str, r: Reference) -> Result<Resp, ApiError> {
    if !state.cfg.delete_enabled {
        return Err(ApiError::new(ErrorCode::Unsupported).msg("deletion is disabled"));
    }
    let st = state.storage.clone();
    let name_s = name.to_string();
    let r2 = r.clone();
    let found = blocking(move || match r2 {
        Reference::Tag(t) => st.delete_tag(&name_s, &t),
        Reference::Digest(d) => {
            if st.get_revision(&name_s, &d)?.is_none() {
                return Ok(false);
            }
            for t in st.tags_for(&name_s, &d)? {
                st.delete_tag(&name_s, &t)?;
            }
            if let Some(bytes) = st.read_blob(&d)? {
                if let Some(s) = manifest::subject_of(&bytes) {
                    st.remove_referrer(&name_s, &s, &d)?;
                }
            }
            st.delete_revision(&name_s, &d)
        }
    })
    .await?;
    if !found {
        return Err(manifest_unknown(name, &r));
    }
    Ok(response(
        StatusCode::ACCEPTED,
        &[("Content-Length", "0".into())],
        empty(),
    ))
}

// -------------------------------------------------------------------- blobs

fn blob_unknown(d: &Digest) -> ApiError {
    ApiError::new(ErrorCode::BlobUnknown)
        .msg(format!("blob unknown: {d}"))
        .detail(json!({ "digest": d.to_string() }))
}

/// Parse a single `bytes=` range against a blob of `size` bytes.
/// `Ok(None)`: no usable range header (serve everything); `Err(())`: unsatisfiable.
fn parse_range(h: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer with the whole blob
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let s: u64 = a.parse().map_err(|_| ())?;
        let e: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (s, e)
    };
    if size == 0 || start >= size || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn get_blob(
    state: &Arc<State>,
    req: &Request<Incoming>,
    name: &str,
    d: Digest,
    head: bool,
) -> Result<Resp, ApiError> {
    let st = state.storage.clone();
    let name_s = name.to_string();
    let d2 = d.clone();
    let size = blocking(move || {
        if !st.has_layer(&name_s, &d2) && st.get_revision(&name_s, &d2)?.is_none() {
            return Ok(None);
        }
        st.blob_size(&d2)
    })
    .await?;
    let Some(size) = size else {
        return Err(blob_unknown(&d));
    };
    let range = match header(req, "range") {
        None => None,
        Some(h) => match parse_range(h, size) {
            Ok(r) => r,
            Err(()) => {
                return Ok(response(
                    status(416),
                    &[
                        ("Content-Range", format!("bytes */{size}")),
                        ("Content-Length", "0".into()),
                    ],
                    empty(),
                ))
            }
        },
    };
    let (code, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut headers = vec![
        ("Content-Type", "application/octet-stream".to_string()),
        ("Content-Length", len.to_string()),
        ("Docker-Content-Digest", d.to_string()),
        ("Accept-Ranges", "bytes".to_string()),
        ("ETag", format!("\"{d}\"")),
        ("Cache-Control", "max-age=31536000".to_string()),
    ];
    if range.is_some() {
        headers.push((
            "Content-Range",
            format!("bytes {start}-{}/{size}", start + len - 1),
        ));
    }
    if head {
        return Ok(response(code, &headers, empty()));
    }
    let mut f = tokio::fs::File::open(state.storage.blob_path(&d))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => blob_unknown(&d),
            _ => ApiError::from(e),
        })?;
    f.set_max_buf_size(STREAM_CHUNK);
    if start > 0 {
        f.seek(SeekFrom::Start(start)).await?;
    }
    Ok(response(code, &headers, stream(f.take(len), STREAM_CHUNK)))
}

async fn delete_blob(state: &Arc<State>, name: &str, d: Digest) -> Result<Resp, ApiError> {
    if !state.cfg.delete_enabled {
        return Err(ApiError::new(ErrorCode::Unsupported).msg("deletion is disabled"));
    }
    let st = state.storage.clone();
    let name_s = name.to_string();
    let d2 = d.clone();
    if !blocking(move || st.unlink_layer(&name_s, &d2)).await? {
        return Err(blob_unknown(&d));
    }
    Ok(response(
        StatusCode::ACCEPTED,
        &[("Content-Length", "0".into())],
        empty(),
    ))
}

// ------------------------------------------------------------------ uploads

fn blob_created(name: &str, d: &Digest) -> Resp {
    response(
        StatusCode::CREATED,
        &[
            ("Location", format!("/v2/{name}/blobs/{d}")),
            ("Docker-Content-Digest", d.to_string()),
            ("Content-Length", "0".into()),
        ],
        empty(),
    )
}

fn upload_headers(name: &str, id: &str, size: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("Range", format!("0-{}", size.saturating_sub(1))),
        ("Docker-Upload-UUID", id.to_string()),
        ("Content-Length", "0".into()),
    ]
}

async fn start_upload(
    state: &Arc<State>,
    req: Request<Incoming>,
    name: &str,
    q: &Query,
    access: &Access,
) -> Result<Resp, ApiError> {
    // Cross-repository mount.
    if let Some(m) = q.get("mount") {
        let d = parse_digest(m)?;
        let from = q.get("from").filter(|f| !f.is_empty()).map(str::to_string);
        if let Some(f) = &from {
            if !is_valid_name(f) {
                return Err(ApiError::new(ErrorCode::NameInvalid).detail(json!({ "name": f })));
            }
        }
        let allowed = from.as_deref().is_none_or(|f| access.can(f, "pull"));
        if allowed {
            let st = state.storage.clone();
            let name_s = name.to_string();
            let d2 = d.clone();
            let mounted = blocking(move || {
                let ok = match &from {
                    Some(f) => st.has_layer(f, &d2) && st.blob_size(&d2)?.is_some(),
                    None => false,
                };
                if ok {
                    st.link_layer(&name_s, &d2)?;
                }
                Ok(ok)
            })
            .await?;
            if mounted {
                return Ok(blob_created(name, &d));
            }
        }
    }
    // Monolithic upload in a single POST.
    if let Some(ds) = q.get("digest") {
        let want = parse_digest(ds)?;
        return monolithic(state, req, name, want).await;
    }
    let alg = match q.get("digest-algorithm") {
        None => Algorithm::Sha256,
        Some(a) => Algorithm::from_name(a).ok_or_else(|| {
            ApiError::new(ErrorCode::DigestInvalid)
                .msg(format!("unsupported digest algorithm {a:?}"))
        })?,
    };
    let st = state.storage.clone();
    let name_s = name.to_string();
    let id = blocking(move || st.create_upload(&name_s)).await?;
    state.uploads.insert(&id, alg.hasher());
    // A body sent with the POST, if any, is the first chunk.
    let has_body = header(&req, "content-length").is_some_and(|l| l != "0")
        || header(&req, "transfer-encoding").is_some();
    let mut size = 0;
    if has_body {
        size = append_chunk(state, req, &id, None).await?;
    }
    let mut headers = upload_headers(name, &id, size);
    headers.push(("OCI-Chunk-Min-Length", "0".into()));
    Ok(response(StatusCode::ACCEPTED, &headers, empty()))
}

async fn monolithic(
    state: &Arc<State>,
    req: Request<Incoming>,
    name: &str,
    want: Digest,
) -> Result<Resp, ApiError> {
    let expected_len = header(&req, "content-length").and_then(|l| l.parse::<u64>().ok());
    let tmp = state.storage.temp_path();
    let result = async {
        let f = tokio::fs::File::create(&tmp).await?;
        let mut w = BufWriter::with_capacity(WRITE_BUF, f);
        let mut h = want.algorithm().hasher();
        let n = copy_body(req.into_body(), &mut w, Some(&mut h)).await?;
        w.into_inner().sync_all().await?;
        if expected_len.is_some_and(|l| l != n) {
            return Err(ApiError::new(ErrorCode::SizeInvalid));
        }
        let got = h.finish();
        if got != want {
            return Err(digest_mismatch(&want, &got));
        }
        let st = state.storage.clone();
        let name_s = name.to_string();
        let (tmp2, want2) = (tmp.clone(), want.clone());
        blocking(move || {
            st.commit_blob(&tmp2, &want2)?;
            st.link_layer(&name_s, &want2)
        })
        .await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result?;
    Ok(blob_created(name, &want))
}

fn digest_mismatch(want: &Digest, got: &Digest) -> ApiError {
    ApiError::new(ErrorCode::DigestInvalid)
        .msg(format!("uploaded content has digest {got}, not {want}"))
        .detail(json!({ "expected": want.to_string(), "actual": got.to_string() }))
}

/// Parse a `Content-Range` of an upload chunk: `<start>-<end>` (inclusive).
fn parse_content_range(h: &str) -> Option<(u64, u64)> {
    let s = h.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    if a.is_empty() || b.is_empty() || !a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn range_not_satisfiable(name: &str, id: &str, size: u64) -> ApiError {
    let mut e = ApiError::new(ErrorCode::BlobUploadInvalid)
        .status(416)
        .msg(format!("chunk out of order: the upload has {size} bytes"));
    for (k, v) in upload_headers(name, id, size) {
        if k != "Content-Length" {
            e = e.header(k, v);
        }
    }
    e
}

/// Append the request body to an upload, checking `Content-Range` when
/// given. Returns the new size of the upload.
async fn append_chunk(
    state: &Arc<State>,
    req: Request<Incoming>,
    id: &str,
    range_for_416: Option<&str>,
) -> Result<u64, ApiError> {
    let session = state.uploads.get(id);
    let mut hasher = session.lock().await;
    let path = state.storage.upload_data(id);
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|_| ApiError::new(ErrorCode::BlobUploadUnknown))?
        .len();
    let range = match header(&req, "content-range") {
        None => None,
        Some(h) => {
            let r = parse_content_range(h);
            match r {
                Some((s, e)) if s == size && e >= s => Some((s, e)),
                _ => {
                    let name = range_for_416.unwrap_or_default();
                    return Err(range_not_satisfiable(name, id, size));
                }
            }
        }
    };
    let declared_len = header(&req, "content-length").and_then(|l| l.parse::<u64>().ok());
    if let (Some((s, e)), Some(l)) = (range, declared_len) {
        if e - s + 1 != l {
            return Err(ApiError::new(ErrorCode::SizeInvalid)
                .status(416)
                .msg("Content-Range does not match Content-Length"));
        }
    }
    let f = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await?;
    let mut w = BufWriter::with_capacity(WRITE_BUF, f);
    let written = copy_body(req.into_body(), &mut w, hasher.as_mut()).await;
    let bad = match &written {
        Err(_) => true,
        Ok(n) => range.is_some_and(|(s, e)| e - s + 1 != *n),
    };
    if bad {
        // Roll the upload back to where the chunk began.
        drop(w);
        let f = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .await?;
        f.set_len(size).await?;
        *hasher = None;
        written?;
        return Err(
            ApiError::new(ErrorCode::SizeInvalid).msg("chunk length does not match Content-Range")
        );
    }
    Ok(size + written?)
}

async fn upload_status(state: &Arc<State>, name: &str, id: &str) -> Result<Resp, ApiError> {
    let size = tokio::fs::metadata(state.storage.upload_data(id))
        .await
        .map_err(|_| ApiError::new(ErrorCode::BlobUploadUnknown))?
        .len();
    let mut h = upload_headers(name, id, size);
    h.retain(|(k, _)| *k != "Content-Length");
    Ok(response(StatusCode::NO_CONTENT, &h, empty()))
}

async fn patch_upload(
    state: &Arc<State>,
    req: Request<Incoming>,
    name: &str,
    id: &str,
) -> Result<Resp, ApiError> {
    let size = append_chunk(state, req, id, Some(name)).await?;
    Ok(response(
        StatusCode::ACCEPTED,
        &upload_headers(name, id, size),
        empty(),
    ))
}

async fn put_upload(
    state: &Arc<State>,
    req: Request<Incoming>,
    name: &str,
    id: &str,
    q: &Query,
) -> Result<Resp, ApiError> {
    let Some(ds) = q.get("digest") else {
        return Err(ApiError::new(ErrorCode::DigestInvalid).msg("digest parameter missing"));
    };
    let want = parse_digest(ds)?;
    let has_body = header(&req, "content-length").is_some_and(|l| l != "0")
        || header(&req, "transfer-encoding").is_some()
        || header(&req, "content-range").is_some();
    if has_body {
        append_chunk(state, req, id, Some(name)).await?;
    }
    let session = state.uploads.get(id);
    let mut guard = session.lock().await;
    let path = state.storage.upload_data(id);
    let got = match guard.take() {
        Some(h) if h.algorithm() == want.algorithm() => h.finish(),
        _ => {
            let p = path.clone();
            let alg = want.algorithm();
            blocking(move || hash_file(&p, alg)).await?
        }
    };
    let st = state.storage.clone();
    let id_s = id.to_string();
    if got != want {
        drop(guard);
        state.uploads.remove(id);
        blocking(move || st.remove_upload(&id_s)).await?;
        return Err(digest_mismatch(&want, &got));
    }
    let name_s = name.to_string();
    let want2 = want.clone();
    blocking(move || {
        std::fs::File::open(&path)?.sync_all()?;
        st.commit_blob(&path, &want2)?;
        st.link_layer(&name_s, &want2)?;
        st.remove_upload(&id_s)
    })
    .await?;
    drop(guard);
    state.uploads.remove(id);
    Ok(blob_created(name, &want))
}

async fn cancel_upload(state: &Arc<State>, id: &str) -> Result<Resp, ApiError> {
    let st = state.storage.clone();
    let id_s = id.to_string();
    blocking(move || st.remove_upload(&id_s)).await?;
    state.uploads.remove(id);
    Ok(response(StatusCode::NO_CONTENT, &[], empty()))
}

// -------------------------------------------------------------------- token

/// The built-in token endpoint: `GET /token?service=..&scope=..` with
/// optional Basic auth, or an OAuth2 `POST /token` form
/// (`grant_type=password` or `grant_type=refresh_token`).
pub(crate) async fn token(state: &Arc<State>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let is_post = req.method() == Method::POST;
    if req.method() != Method::GET && !is_post {
        return Err(method_not_allowed());
    }
    let mut q = Query::parse(req.uri().query());
    let basic = header(&req, "authorization").and_then(super::auth::parse_basic);
    let mut offline = q.get("offline_token") == Some("true");
    let mut user: Option<(String, String)> = basic;
    let mut refresh_user = None;
    if is_post {
        let body = read_limited(req.into_body(), 64 << 10).await?;
        let form = Query::parse(Some(&String::from_utf8_lossy(&body)));
        match form.get("grant_type") {
            Some("password") => {
                user = Some((
                    form.get("username").unwrap_or_default().to_string(),
                    form.get("password").unwrap_or_default().to_string(),
                ));
                offline = form.get("access_type") == Some("offline");
            }
            Some("refresh_token") => {
                let t = form.get("refresh_token").unwrap_or_default();
                match state.tokens.refresh_user(t) {
                    Some(u) => refresh_user = Some(u),
                    None => {
                        return Err(
                            ApiError::new(ErrorCode::Unauthorized).msg("invalid refresh token")
                        )
                    }
                }
            }
            _ => {
                return Err(ApiError::new(ErrorCode::Unsupported)
                    .status(400)
                    .msg("unsupported grant_type"))
            }
        }
        q.0.extend(form.0);
    }
    let mut user_ok = refresh_user.is_some();
    let mut username = refresh_user;
    if let Some((u, p)) = &user {
        match state.htpasswd.as_ref() {
            Some(ht) if !ht.verify(u, p) => {
                return Err(ApiError::new(ErrorCode::Unauthorized)
                    .msg("invalid username or password")
                    .header(
                        "WWW-Authenticate",
                        format!("Basic realm=\"{TOKEN_SERVICE}\""),
                    ));
            }
            _ => {
                user_ok = true;
                username = Some(u.clone());
            }
        }
    }
    let requested: Vec<TokenScope> = q
        .all("scope")
        .into_iter()
        .flat_map(TokenScope::parse_list)
        .collect();
    let granted = token_grants(state, user_ok, requested);
    let scope_text = granted
        .iter()
        .map(|s| format!("{}:{}:{}", s.kind, s.name, s.actions.join(",")))
        .collect::<Vec<_>>()
        .join(" ");
    let token = state.tokens.issue(granted);
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": state.tokens.ttl.as_secs().max(1),
        "scope": scope_text,
    });
    if offline && user_ok {
        if let Some(u) = &username {
            body["refresh_token"] = json!(state.tokens.issue_refresh(u));
        }
    }
    Ok(json_response(StatusCode::OK, &[], &body))
}
