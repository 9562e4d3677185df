//! `/images/…`, `/auth`, `/distribution/{name}/json`, `/commit`.
//!
//! Pull, push and load answer with dockerd's JSON progress stream
//! ([`berth_engine::jsonmessage`]); save streams the tar as the engine writes it, and load reads
//! the request body as it arrives: neither holds an archive in memory.

use crate::http::{ok_json, read_json, status_only, ApiError, ApiResult, Body, Query, Resp};
use crate::router::{Call, Routed};
use crate::state::State;
use berth_engine::images::ImageFilters;
use berth_engine::jsonmessage;
use berth_engine::registry::{Credential, Credentials, PullOptions, PushOptions};
use berth_engine::types::{DeleteItem, LoadedImage};
use berth_engine::{Engine, EngineError};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    let segs = call.segs.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = call.method.clone();
    Routed::Done(match (method.as_str(), s.as_slice()) {
        ("POST", ["auth"]) => auth(state, call).await,
        ("POST", ["commit"]) => commit(state, call).await,
        ("GET", ["distribution", name @ .., "json"]) if !name.is_empty() => {
            distribution(state, &call, &name.join("/")).await
        }
        ("POST", ["images", "create"]) => create(state, call).await,
        ("GET", ["images", "json"]) => list(state, &call.query).await,
        ("GET", ["images", "search"]) => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "image search is not available: berth has no registry index to search; \
             look the image up on its registry's web site and pull it by name",
        )),
        ("GET", ["images", "get"]) => {
            let names: Vec<String> = call
                .query
                .all("names")
                .into_iter()
                .map(String::from)
                .collect();
            save(state, names).await
        }
        ("POST", ["images", "load"]) => load(state, call).await,
        ("POST", ["images", "prune"]) => prune(state, &call.query).await,
        ("GET", ["images", name @ .., "json"]) if !name.is_empty() => {
            let name = name.join("/");
            inspect(state, name).await
        }
        ("GET", ["images", name @ .., "history"]) if !name.is_empty() => {
            let name = name.join("/");
            history(state, name).await
        }
        ("GET", ["images", name @ .., "get"]) if !name.is_empty() => {
            save(state, vec![name.join("/")]).await
        }
        ("POST", ["images", name @ .., "push"]) if !name.is_empty() => {
            let name = name.join("/");
            push(state, call, name).await
        }
        ("POST", ["images", name @ .., "tag"]) if !name.is_empty() => {
            let name = name.join("/");
            tag(state, &call.query, name).await
        }
        ("DELETE", ["images", name @ ..]) if !name.is_empty() => {
            let name = name.join("/");
            remove(state, &call.query, name).await
        }
        _ => return Routed::Next(call),
    })
}

/// The credentials of `X-Registry-Auth` (base64url of `{"username","password","serveraddress",
/// "identitytoken"}`): none when the header is absent or empty (`e30=`, the CLI's `{}`), as
/// dockerd never falls back to any file of its own.
pub(crate) fn registry_auth(req: &Request<Incoming>) -> Result<Credentials, ApiError> {
    let Some(h) = req.headers().get("X-Registry-Auth") else {
        return Ok(Credentials::Given(None));
    };
    let raw = h
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: not ASCII"))?
        .trim();
    if raw.is_empty() {
        return Ok(Credentials::Given(None));
    }
    let v = decode_auth_json(raw)?;
    Ok(Credentials::Given(credential_of(&v)))
}

/// base64url (the CLI) or standard base64 (docker-py), padded or not, of a JSON object.
fn decode_auth_json(raw: &str) -> Result<Value, ApiError> {
    use base64::Engine as _;
    let cleaned = raw.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cleaned)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned))
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))
}

fn credential_of(v: &Value) -> Option<Credential> {
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_default()
    };
    let username = field("username");
    let token = field("identitytoken");
    if !token.is_empty() {
        return Some(Credential::IdentityToken { username, token });
    }
    let password = field("password");
    if username.is_empty() && password.is_empty() {
        return None;
    }
    Some(Credential::Basic { username, password })
}

/// Where a streamed operation's messages go: a bounded channel to the response, so a slow
/// client slows the work down instead of growing a buffer; once the client is gone, messages
/// go nowhere. A std channel, because the engine reports registry progress from inside its
/// own runtime, where a tokio channel's blocking send is not allowed.
#[derive(Clone)]
pub(crate) struct Sink(std::sync::mpsc::SyncSender<Value>);

impl Sink {
    /// Sends one message (blocking while the client is behind).
    pub(crate) fn send(&self, v: Value) {
        let _ = self.0.send(v);
    }
}

/// Runs `work` on an engine with a [`Sink`] for JSON messages and answers as dockerd does: an
/// error before any message (beyond `hold` held ones) is a plain error response with its
/// status; once the stream began, the answer is 200 and a later error is its last message
/// (`{"errorDetail":…}`).
pub(crate) async fn json_stream<F>(state: &Arc<State>, hold: usize, work: F) -> ApiResult
where
    F: FnOnce(&mut Engine, &Sink) -> Result<(), StreamError> + Send + 'static,
{
    let (stx, srx) = std::sync::mpsc::sync_channel::<Value>(64);
    let (mtx, mut mrx) = mpsc::channel::<Value>(64);
    // The bridge from the engine's thread to this runtime; it ends when the work drops its
    // sink or the response is gone.
    tokio::task::spawn_blocking(move || {
        while let Ok(v) = srx.recv() {
            if mtx.blocking_send(v).is_err() {
                return;
            }
        }
    });
    let pool = state.pool.clone();
    let task = tokio::spawn(async move {
        pool.run_long(move |e| {
            let sink = Sink(stx);
            Ok(work(e, &sink))
        })
        .await
    });
    let mut held = Vec::new();
    while held.len() <= hold {
        match mrx.recv().await {
            Some(v) => held.push(v),
            None => break,
        }
    }
    if held.len() <= hold {
        // The work ended before the stream had to begin.
        let result = task
            .await
            .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?;
        match result {
            Err(e) => return Err(e),
            Ok(Err(StreamError::Api(e))) => return Err(e),
            Ok(Err(StreamError::Message(v))) => held.push(v),
            Ok(Ok(())) => {}
        }
        let mut body = Vec::new();
        for v in &held {
            body.extend_from_slice(&jsonmessage::encode(v));
        }
        return Ok(json_stream_response(Body::from_bytes(body)));
    }
    let (tx, body) = Body::channel();
    tokio::spawn(async move {
        for v in held {
            if tx.send(Bytes::from(jsonmessage::encode(&v))).await.is_err() {
                return;
            }
        }
        while let Some(v) = mrx.recv().await {
            if tx.send(Bytes::from(jsonmessage::encode(&v))).await.is_err() {
                return;
            }
        }
        let last = match task.await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(StreamError::Message(v)))) => Some(v),
            Ok(Ok(Err(StreamError::Api(e)))) | Ok(Err(e)) => Some(jsonmessage::error(&e.message)),
            Err(e) => Some(jsonmessage::error(&format!("engine task failed: {e}"))),
        };
        if let Some(v) = last {
            let _ = tx.send(Bytes::from(jsonmessage::encode(&v))).await;
        }
    });
    Ok(json_stream_response(body))
}

/// How a streamed operation failed: an error with its HTTP status (answered as such when the
/// stream has not begun), or a ready error message.
pub(crate) enum StreamError {
    Api(ApiError),
    Message(Value),
}

impl From<EngineError> for StreamError {
    fn from(e: EngineError) -> StreamError {
        StreamError::Api(ApiError::from(e))
    }
}

impl From<ApiError> for StreamError {
    fn from(e: ApiError) -> StreamError {
        StreamError::Api(e)
    }
}

fn json_stream_response(body: Body) -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// `POST /images/create`: a pull (`fromImage`, `tag`, `platform`), or an import from a URL
/// (`fromSrc`).
async fn create(state: &Arc<State>, call: Call) -> ApiResult {
    let q = &call.query;
    if q.get("fromSrc").is_some() {
        return import(state, call).await;
    }
    let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()) else {
        return Err(ApiError::bad_request(
            "fromImage or fromSrc is required: name the image to pull, or the archive to import",
        ));
    };
    let tag = q.get("tag").unwrap_or("").trim();
    let parsed = has_tag_or_digest(from)?;
    let (reference, all_tags) = if tag.is_empty() {
        // dockerd pulls every tag of a repository named without tag or digest.
        (from.to_string(), !parsed)
    } else if tag.starts_with("sha256:") {
        (format!("{from}@{tag}"), false)
    } else {
        (format!("{from}:{tag}"), false)
    };
    let opts = PullOptions {
        all_tags,
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(String::from),
        quiet: false,
        credentials: registry_auth(&call.req)?,
    };
    // "Pulling from" is held back: dockerd answers an unknown image with a plain 404.
    json_stream(state, 1, move |e, sink| {
        e.pull_image(&reference, &opts, &mut |p| {
            if let Some(v) = jsonmessage::progress(&p) {
                sink.send(v)
            }
        })?;
        Ok(())
    })
    .await
}

/// Whether `name` already carries a tag or a digest (a 400 when it is no reference at all).
fn has_tag_or_digest(name: &str) -> Result<bool, ApiError> {
    let r = berth_engine::images::Reference::parse(name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(r.tag().is_some() || r.digest().is_some())
}

/// `fromSrc=-` (the tarball is the request body, read as it arrives) or `fromSrc=URL`: an
/// import of a root filesystem tarball, with `repo`, `tag`, `changes` and `message`.
async fn import(state: &Arc<State>, call: Call) -> ApiResult {
    let q = &call.query;
    let src = q.get("fromSrc").unwrap_or("").to_string();
    let repo = q.get("repo").map(String::from);
    let tag = q.get("tag").map(String::from);
    let changes: Vec<String> = q.all("changes").into_iter().map(String::from).collect();
    let message = q.get("message").filter(|m| !m.is_empty()).map(String::from);
    let source = if src == "-" {
        berth_engine::images::ImportSource::Stream(berth_engine::images::ImportStream::new(
            BodyReader::new(call.req.into_body()),
        ))
    } else if src.starts_with("http://") || src.starts_with("https://") {
        berth_engine::images::ImportSource::Url(src)
    } else {
        return Err(ApiError::bad_request(format!(
            "fromSrc {src:?}: give - (the tarball as the request body) or an http(s) URL"
        )));
    };
    let reference = match (
        repo.filter(|r| !r.is_empty()),
        tag.filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r),
        _ => None,
    };
    json_stream(state, 0, move |e, sink| {
        let opts = berth_engine::images::ImportOptions {
            reference,
            changes,
            message,
            // The Engine API has no such parameter: the clock, as dockerd.
            source_date_epoch: None,
        };
        let id = e.import_image(&source, &opts)?;
        sink.send(json!({ "status": id.to_string() }));
        Ok(())
    })
    .await
}

/// `POST /images/{name}/push`.
async fn push(state: &Arc<State>, call: Call, name: String) -> ApiResult {
    let tag = call.query.get("tag").unwrap_or("").trim().to_string();
    let reference = if tag.is_empty() {
        name
    } else {
        format!("{name}:{tag}")
    };
    let opts = PushOptions {
        all_tags: tag.is_empty() && !has_tag_or_digest(&reference)?,
        quiet: false,
        credentials: registry_auth(&call.req)?,
    };
    json_stream(state, 0, move |e, sink| {
        let r = e.push_image(&reference, &opts, &mut |p| {
            if let Some(v) = jsonmessage::progress(&p) {
                sink.send(v)
            }
        })?;
        let tag = r
            .reference
            .rsplit_once(':')
            .map(|(_, t)| t)
            .unwrap_or("latest");
        let tag = if tag.contains('/') { "latest" } else { tag };
        sink.send(jsonmessage::aux(
            json!({"Tag": tag, "Digest": r.digest, "Size": r.size}),
        ));
        Ok(())
    })
    .await
}

/// `POST /images/{name}/tag?repo=&tag=`: 201 as dockerd.
async fn tag(state: &Arc<State>, q: &Query, name: String) -> ApiResult {
    let repo = q.get("repo").unwrap_or("").trim().to_string();
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "repo is required: name the new repository",
        ));
    }
    let tag = q.get("tag").unwrap_or("").trim();
    let target = if tag.is_empty() {
        repo
    } else {
        format!("{repo}:{tag}")
    };
    state.pool.run(move |e| e.tag_image(&name, &target)).await?;
    status_only(StatusCode::CREATED)
}

/// `DELETE /images/{name}?force=&noprune=`: `[{"Untagged":…},{"Deleted":…}]`.
async fn remove(state: &Arc<State>, q: &Query, name: String) -> ApiResult {
    let force = q.bool("force");
    if q.bool("noprune") {
        // berth deletes an image's untagged parents only as Docker's prune does; keeping them
        // on request is not implemented, so the flag is refused rather than ignored.
        return Err(ApiError::bad_request(
            "noprune is not supported by berth serve: berth keeps no untagged parent images to prune",
        ));
    }
    let items = state
        .pool
        .run(move |e| e.remove_image(&name, force))
        .await?;
    ok_json(&delete_items(&items))
}

fn delete_items(items: &[DeleteItem]) -> Vec<Value> {
    items
        .iter()
        .map(|i| match i {
            DeleteItem::Untagged(s) => json!({ "Untagged": s }),
            DeleteItem::Deleted(s) => json!({ "Deleted": s }),
        })
        .collect()
}

/// `GET /images/json?all=&filters=&digests=`.
async fn list(state: &Arc<State>, q: &Query) -> ApiResult {
    let all = q.bool("all");
    let filters = q.filters()?;
    let list = state
        .pool
        .run(move |e| {
            let f = ImageFilters::parse(&filters)?;
            e.list_images(all, &f)
        })
        .await?;
    ok_json(&list)
}

async fn inspect(state: &Arc<State>, name: String) -> ApiResult {
    let v = state.pool.run(move |e| e.inspect_image(&name)).await?;
    ok_json(&v)
}

async fn history(state: &Arc<State>, name: String) -> ApiResult {
    let v = state.pool.run(move |e| e.image_history(&name)).await?;
    ok_json(&v)
}

/// `POST /images/prune?filters=`: `dangling=false` prunes every unused image (`-a`).
async fn prune(state: &Arc<State>, q: &Query) -> ApiResult {
    let mut all = false;
    let mut rest = Vec::new();
    for f in q.filters()? {
        match f.as_str() {
            "dangling=false" | "dangling=0" => all = true,
            "dangling=true" | "dangling=1" => {}
            _ => rest.push(f),
        }
    }
    let report = state
        .pool
        .run(move |e| {
            let f = ImageFilters::parse(&rest)?;
            e.prune_images(all, &f)
        })
        .await?;
    ok_json(&json!({
        "ImagesDeleted": if report.images_deleted.is_empty() { Value::Null } else { json!(delete_items(&report.images_deleted)) },
        "SpaceReclaimed": report.space_reclaimed,
    }))
}

/// A writer that hands what it is given to the response body, blocking while the client is
/// slow; it fails once the client is gone, which stops the engine's writing.
struct ChannelWriter(mpsc::Sender<Bytes>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /images/get?names=…` and `GET /images/{name}/get`: the tar as `save` writes it,
/// streamed. The names are resolved before the first byte, so an unknown one is a 404.
async fn save(state: &Arc<State>, names: Vec<String>) -> ApiResult {
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "names is required: name the images to save",
        ));
    }
    let check = names.clone();
    state
        .pool
        .run(move |e| {
            for n in &check {
                e.resolve_image(n)?;
            }
            Ok(())
        })
        .await?;
    let (tx, body) = Body::channel();
    let pool = state.pool.clone();
    tokio::spawn(async move {
        // A failure midway can only cut the stream short: the client sees a truncated tar.
        let _ = pool
            .run_long(move |e| {
                let w = std::io::BufWriter::with_capacity(1 << 16, ChannelWriter(tx));
                e.save_images(&names, w)
            })
            .await;
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/x-tar")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// A reader over a request body's frames, for the engine's blocking readers: bytes arrive as
/// the client sends them, so the body is never held whole.
pub(crate) struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl BodyReader {
    /// Starts feeding `body` through a small bounded channel.
    pub(crate) fn new(body: Incoming) -> BodyReader {
        use http_body_util::BodyExt;
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let mut body = body;
            loop {
                match body.frame().await {
                    None => return,
                    Some(Ok(f)) => {
                        if let Ok(data) = f.into_data() {
                            if tx.send(Ok(data)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        return;
                    }
                }
            }
        });
        BodyReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        format!("reading the request body: {e}"),
                    ))
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// `POST /images/load?quiet=`: the body is read as it arrives; the answer is dockerd's stream
/// (`{"stream":"Loaded image: busybox:latest\n"}`).
async fn load(state: &Arc<State>, call: Call) -> ApiResult {
    let _quiet = call.query.bool("quiet");
    let reader = BodyReader::new(call.req.into_body());
    let loaded = state.pool.run_long(move |e| e.load_images(reader)).await?;
    let mut body = Vec::new();
    for l in loaded {
        let line = match l {
            LoadedImage::Tag(t) => format!("Loaded image: {t}\n"),
            LoadedImage::Id(id) => format!("Loaded image ID: {id}\n"),
        };
        body.extend_from_slice(&jsonmessage::encode(&jsonmessage::stream(&line)));
    }
    Ok(json_stream_response(Body::from_bytes(body)))
}

/// `POST /auth`: checks the credentials with the registry and stores nothing (the client
/// keeps them); 401 with the registry's words when it refuses them.
async fn auth(state: &Arc<State>, call: Call) -> ApiResult {
    #[derive(serde::Deserialize, Default)]
    struct AuthConfig {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        #[serde(default, alias = "serveraddress")]
        serveraddress: String,
    }
    let cfg: AuthConfig = read_json(call.req).await?.unwrap_or_default();
    let server = if cfg.serveraddress.is_empty() {
        berth_engine::registry::DEFAULT_SERVER.to_string()
    } else {
        cfg.serveraddress.clone()
    };
    let r = state
        .pool
        .run(move |e| e.check_login(&server, &cfg.username, &cfg.password))
        .await;
    match r {
        Ok(_) => ok_json(&json!({"Status": "Login Succeeded", "IdentityToken": ""})),
        Err(e) if e.message.starts_with("unauthorized") || e.message.contains("401") => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, e.message))
        }
        Err(e) => Err(e),
    }
}

/// `GET /distribution/{name}/json`: the descriptor the registry serves for `name` and the
/// platforms it offers.
async fn distribution(state: &Arc<State>, call: &Call, name: &str) -> ApiResult {
    let creds = registry_auth(&call.req)?;
    let name = name.to_string();
    let v = state
        .pool
        .run(move |e| e.distribution_inspect(&name, &creds))
        .await?;
    ok_json(&v)
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`. A configuration in
/// the body is refused (berth applies `changes` only).
async fn commit(state: &Arc<State>, call: Call) -> ApiResult {
    let q = &call.query;
    let container = q.get("container").unwrap_or("").to_string();
    if container.is_empty() {
        return Err(ApiError::bad_request(
            "container is required: name the container to commit",
        ));
    }
    let repo = q.get("repo").unwrap_or("").trim().to_string();
    let tag = q.get("tag").unwrap_or("").trim().to_string();
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    let opts = berth_engine::containers::commit::CommitOptions {
        reference,
        changes: q.all("changes").into_iter().map(String::from).collect(),
        message: q.get("comment").filter(|s| !s.is_empty()).map(String::from),
        author: q.get("author").filter(|s| !s.is_empty()).map(String::from),
        pause: q.bool_or("pause", true),
        // The Engine API has no such parameter: the clock, as dockerd.
        source_date_epoch: None,
    };
    let body: Option<Value> = read_json(call.req).await?;
    if let Some(b) = body {
        let empty = b.is_null()
            || b.as_object().is_some_and(|o| {
                o.values().all(|v| {
                    v.is_null()
                        || v == &json!({})
                        || v == &json!([])
                        || v == &json!("")
                        || v == &json!(false)
                        || v == &json!(0)
                })
            });
        if !empty {
            return Err(ApiError::bad_request(
                "a container configuration in the commit body is not supported by berth serve: use changes (Dockerfile instructions) instead",
            ));
        }
    }
    let id = state
        .pool
        .run(move |e| e.commit_container(&container, &opts))
        .await?;
    Ok(crate::http::json_response(
        StatusCode::CREATED,
        &json!({ "Id": id.to_string() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_decodes_cli_and_docker_py_forms() {
        // The docker CLI: base64url without newlines; docker-py: standard base64, padded.
        let cli = "eyJ1c2VybmFtZSI6ImV2YWx1c2VyIiwicGFzc3dvcmQiOiJldmFscGFzcyIsInNlcnZlcmFkZHJlc3MiOiIxMjcuMC4wLjE6NTA1NSJ9";
        let v = decode_auth_json(cli).unwrap();
        assert_eq!(
            credential_of(&v),
            Some(Credential::Basic {
                username: "evaluser".into(),
                password: "evalpass".into()
            })
        );
        // `{}` (e30=): no credentials at all.
        assert_eq!(credential_of(&decode_auth_json("e30=").unwrap()), None);
        let token = decode_auth_json(
            "eyJ1c2VybmFtZSI6InUiLCJpZGVudGl0eXRva2VuIjoidCJ9", // {"username":"u","identitytoken":"t"}
        )
        .unwrap();
        assert_eq!(
            credential_of(&token),
            Some(Credential::IdentityToken {
                username: "u".into(),
                token: "t".into()
            })
        );
        assert!(decode_auth_json("not base64!").is_err());
    }

    #[test]
    fn tags_and_digests_are_told_apart() {
        assert!(!has_tag_or_digest("busybox").unwrap());
        assert!(has_tag_or_digest("busybox:1").unwrap());
        assert!(!has_tag_or_digest("127.0.0.1:5000/x/busybox").unwrap());
        assert!(has_tag_or_digest(
            "busybox@sha256:82825ee3bf5be346f39d913191b697bc4ec8004a3f9eeabe4a1b5dfab36c1a05"
        )
        .unwrap());
        assert!(has_tag_or_digest("Bad Name").is_err());
    }
}
