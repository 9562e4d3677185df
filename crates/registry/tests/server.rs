//! The registry server, endpoint by endpoint, over HTTP on 127.0.0.1.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn ping_and_unknown_paths() {
    let s = start().await;
    let r = s.http.get(s.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let r = s.http.get(s.u("/v2")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.http.get(s.u("/v2/foo/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = s.http.get(s.u("/other")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn blob_pull_head_range_and_errors() {
    let s = start().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = push_blob(&s.http, &s.url, "lib/app", &data).await;
    let r = s
        .http
        .head(s.u(&format!("/v2/lib/app/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "100000");
    assert_eq!(r.headers()["docker-content-digest"], d.to_string().as_str());
    let r = s
        .http
        .get(s.u(&format!("/v2/lib/app/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);
    // Ranges.
    let r = s
        .http
        .get(s.u(&format!("/v2/lib/app/blobs/{d}")))
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/100000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[10..20]);
    let r = s
        .http
        .get(s.u(&format!("/v2/lib/app/blobs/{d}")))
        .header("Range", "bytes=99990-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[99990..]);
    let r = s
        .http
        .get(s.u(&format!("/v2/lib/app/blobs/{d}")))
        .header("Range", "bytes=-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[99995..]);
    let r = s
        .http
        .get(s.u(&format!("/v2/lib/app/blobs/{d}")))
        .header("Range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */100000");
    // Unknown blob, and a blob of another repository.
    let other = digest(b"nope");
    let r = s
        .http
        .get(s.u(&format!("/v2/lib/app/blobs/{other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN");
    assert!(body["errors"][0]["message"].is_string());
    assert_eq!(body["errors"][0]["detail"]["digest"], other.to_string());
    let r = s
        .http
        .head(s.u(&format!("/v2/lib/app/blobs/{other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .http
        .get(s.u(&format!("/v2/other/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Invalid digests.
    let r = s
        .http
        .get(s.u("/v2/lib/app/blobs/sha256:1234"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
}

#[tokio::test]
async fn monolithic_post_with_wrong_digest() {
    let s = start().await;
    let wrong = digest(b"something else");
    let r = s
        .http
        .post(s.u(&format!("/v2/a/blobs/uploads/?digest={wrong}")))
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = s
        .http
        .head(s.u(&format!("/v2/a/blobs/{wrong}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Nothing left behind.
    let left: Vec<_> = std::fs::read_dir(s.root().join("_uploads"))
        .unwrap()
        .collect();
    assert!(left.is_empty());
}

#[tokio::test]
async fn post_then_put() {
    let s = start().await;
    let r = s
        .http
        .post(s.u("/v2/a/b/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/v2/a/b/blobs/uploads/"));
    assert!(r.headers().contains_key("docker-upload-uuid"));
    let data = b"monolithic body".to_vec();
    let d = digest(&data);
    let r = s
        .http
        .put(s.u(&format!("{loc}?digest={d}")))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/a/b/blobs/{d}").as_str()
    );
    assert_eq!(r.headers()["docker-content-digest"], d.to_string().as_str());
    let got = s
        .http
        .get(s.u(&format!("/v2/a/b/blobs/{d}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    // The session is gone.
    let r = s.http.get(s.u(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    // PUT without digest.
    let r = s
        .http
        .post(s.u("/v2/a/b/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = s.http.put(s.u(&loc)).body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    // Cancel.
    let r = s.http.delete(s.u(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = s.http.get(s.u(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Another repository cannot use the session's URL.
    let r = s
        .http
        .post(s.u("/v2/a/b/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let stolen = loc.replace("/v2/a/b/", "/v2/c/");
    let r = s.http.get(s.u(&stolen)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn chunked_upload_with_gaps_and_status() {
    let s = start().await;
    let data: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = digest(&data);
    let r = s
        .http
        .post(s.u("/v2/chunky/blobs/uploads/"))
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut loc = r.headers()["location"].to_str().unwrap().to_string();
    // First chunk.
    let r = s
        .http
        .patch(s.u(&loc))
        .header("Content-Range", "0-9999")
        .body(data[..10_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-9999");
    loc = r.headers()["location"].to_str().unwrap().to_string();
    // A gap: 416 with the current range.
    let r = s
        .http
        .patch(s.u(&loc))
        .header("Content-Range", "10001-19999")
        .body(data[10_001..20_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["range"], "0-9999");
    // An overlap: 416 too.
    let r = s
        .http
        .patch(s.u(&loc))
        .header("Content-Range", "5000-14999")
        .body(data[5_000..15_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    // Status.
    let r = s.http.get(s.u(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-9999");
    assert!(r.headers().contains_key("location"));
    // Second chunk, without Content-Range (streamed, as docker does).
    let r = s
        .http
        .patch(s.u(&loc))
        .body(data[10_000..20_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-19999");
    // Final chunk in the closing PUT, out of order first.
    let r = s
        .http
        .put(s.u(&format!("{loc}?digest={d}")))
        .header("Content-Range", "25000-29999")
        .body(data[25_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = s
        .http
        .put(s.u(&format!("{loc}?digest={d}")))
        .header("Content-Range", "20000-29999")
        .body(data[20_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let got = s
        .http
        .get(s.u(&format!("/v2/chunky/blobs/{d}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &data[..]);
}

#[tokio::test]
async fn chunked_upload_digest_mismatch() {
    let s = start().await;
    let r = s
        .http
        .post(s.u("/v2/x/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let r = s
        .http
        .patch(s.u(&loc))
        .header("Content-Range", "0-2")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let wrong = digest(b"abd");
    let r = s
        .http
        .put(s.u(&format!("{loc}?digest={wrong}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = s
        .http
        .head(s.u(&format!("/v2/x/blobs/{wrong}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn manifests_push_pull_and_errors() {
    let s = start().await;
    let (md, mbytes) = push_image(&s.http, &s.url, "lib/web", "v1", "one").await;
    for reference in ["v1".to_string(), md.to_string()] {
        let r = s
            .http
            .get(s.u(&format!("/v2/lib/web/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(
            r.headers()["docker-content-digest"],
            md.to_string().as_str()
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), &mbytes[..]);
        let r = s
            .http
            .head(s.u(&format!("/v2/lib/web/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-length"],
            mbytes.len().to_string().as_str()
        );
    }
    // Unknown tag and repository.
    let r = s
        .http
        .get(s.u("/v2/lib/web/manifests/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let r = s
        .http
        .get(s.u("/v2/no/such/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Missing blobs.
    let ghost = digest(b"ghost");
    let m = serde_json::to_vec(&image_manifest(&ghost, 5, &[])).unwrap();
    let r = s
        .http
        .put(s.u("/v2/lib/web/manifests/bad"))
        .header("Content-Type", OCI_MANIFEST)
        .body(m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(v["errors"][0]["detail"]["digest"], ghost.to_string());
    // Invalid manifest.
    let r = s
        .http
        .put(s.u("/v2/lib/web/manifests/bad"))
        .header("Content-Type", OCI_MANIFEST)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    // Content-Type that disagrees with mediaType.
    let r = s
        .http
        .put(s.u("/v2/lib/web/manifests/bad"))
        .header("Content-Type", DOCKER_MANIFEST)
        .body(mbytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    // Push by digest: must match.
    let r = s
        .http
        .put(s.u(&format!("/v2/lib/web/manifests/{}", digest(b"other"))))
        .header("Content-Type", OCI_MANIFEST)
        .body(mbytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    // Push by digest with tags.
    let r = s
        .http
        .put(s.u(&format!("/v2/lib/web/manifests/{md}?tag=a&tag=b")))
        .header("Content-Type", OCI_MANIFEST)
        .body(mbytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/lib/web/manifests/{md}").as_str()
    );
    assert_eq!(r.headers()["oci-tag"], "a, b");
    let r = s
        .http
        .get(s.u("/v2/lib/web/manifests/b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Invalid tag.
    let r = s
        .http
        .get(s.u("/v2/lib/web/manifests/-bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn docker_schema2_and_index() {
    let s = start().await;
    let config = b"{}".to_vec();
    let cd = push_blob(&s.http, &s.url, "multi", &config).await;
    let ld = push_blob(&s.http, &s.url, "multi", b"layer").await;
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ld.to_string(), "size": 5}],
    })).unwrap();
    let md = digest(&m);
    // An index referencing a manifest the repository lacks is refused.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": md.to_string(), "size": m.len(),
                       "platform": {"os": "linux", "architecture": "amd64"}}],
    }))
    .unwrap();
    let r = s
        .http
        .put(s.u("/v2/multi/manifests/latest"))
        .header("Content-Type", OCI_INDEX)
        .body(index.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");
    let r = s
        .http
        .put(s.u(&format!("/v2/multi/manifests/{md}")))
        .header("Content-Type", DOCKER_MANIFEST)
        .body(m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .http
        .put(s.u("/v2/multi/manifests/latest"))
        .header("Content-Type", OCI_INDEX)
        .body(index)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .http
        .get(s.u("/v2/multi/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    let r = s
        .http
        .get(s.u(&format!("/v2/multi/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], DOCKER_MANIFEST);
}

#[tokio::test]
async fn tags_and_catalog_pagination() {
    let s = start().await;
    let r = s
        .http
        .get(s.u("/v2/nothing/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");
    for t in ["c", "a", "B", "b", "d"] {
        push_image(&s.http, &s.url, "paged", t, "x").await;
    }
    push_image(&s.http, &s.url, "alpha/one", "latest", "y").await;
    push_image(&s.http, &s.url, "zeta", "latest", "z").await;
    let v: Value = s
        .http
        .get(s.u("/v2/paged/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"name": "paged", "tags": ["B", "a", "b", "c", "d"]})
    );
    let r = s
        .http
        .get(s.u("/v2/paged/tags/list?n=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/paged/tags/list?n=2&last=a>; rel=\"next\""
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!(["B", "a"]));
    let r = s
        .http
        .get(s.u("/v2/paged/tags/list?n=2&last=a"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!(["b", "c"]));
    let r = s
        .http
        .get(s.u("/v2/paged/tags/list?n=2&last=c"))
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("link"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!(["d"]));
    let r = s
        .http
        .get(s.u("/v2/paged/tags/list?n=0"))
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("link"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!([]));
    let v: Value = s
        .http
        .get(s.u("/v2/paged/tags/list?last=b"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tags"], json!(["c", "d"]));
    // Catalog.
    let v: Value = s
        .http
        .get(s.u("/v2/_catalog"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"repositories": ["alpha/one", "paged", "zeta"]}));
    let r = s.http.get(s.u("/v2/_catalog?n=1")).send().await.unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/_catalog?n=1&last=alpha/one>; rel=\"next\""
    );
    let v: Value = s
        .http
        .get(s.u("/v2/_catalog?n=5&last=alpha/one"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["repositories"], json!(["paged", "zeta"]));
}

#[tokio::test]
async fn cross_repository_mount() {
    let s = start().await;
    let d = push_blob(&s.http, &s.url, "src/repo", b"shared layer").await;
    let r = s
        .http
        .post(s.u(&format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/dst/blobs/{d}").as_str()
    );
    assert_eq!(r.headers()["docker-content-digest"], d.to_string().as_str());
    let r = s
        .http
        .get(s.u(&format!("/v2/dst/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"shared layer");
    // A blob the source lacks: an upload session starts instead.
    let missing = digest(b"missing");
    let r = s
        .http
        .post(s.u(&format!(
            "/v2/dst2/blobs/uploads/?mount={missing}&from=src/repo"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/v2/dst2/blobs/uploads/"));
    // Invalid source name.
    let r = s
        .http
        .post(s.u(&format!("/v2/dst2/blobs/uploads/?mount={d}&from=../src")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "NAME_INVALID");
}

#[tokio::test]
async fn referrers_api() {
    let s = start().await;
    let (subject, sbytes) = push_image(&s.http, &s.url, "signed", "latest", "base").await;
    let empty = push_blob(&s.http, &s.url, "signed", b"{}").await;
    let mut pushed = Vec::new();
    for (i, at) in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    ]
    .iter()
    .enumerate()
    {
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": at,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": sbytes.len()},
            "annotations": {"n": i.to_string()},
        })).unwrap();
        let d = digest(&m);
        let r = s
            .http
            .put(s.u(&format!("/v2/signed/manifests/{d}")))
            .header("Content-Type", OCI_MANIFEST)
            .body(m)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["oci-subject"], subject.to_string().as_str());
        pushed.push(d);
    }
    let r = s
        .http
        .get(s.u(&format!("/v2/signed/referrers/{subject}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["mediaType"], OCI_INDEX);
    let list = v["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .all(|m| m["mediaType"] == OCI_MANIFEST && m["annotations"]["n"].is_string()));
    let r = s
        .http
        .get(s.u(&format!(
            "/v2/signed/referrers/{subject}?artifactType=application/vnd.example.sig"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], pushed[1].to_string());
    assert_eq!(
        v["manifests"][0]["artifactType"],
        "application/vnd.example.sig"
    );
    // No referrers: an empty index, not 404.
    let r = s
        .http
        .get(s.u(&format!("/v2/signed/referrers/{}", digest(b"none"))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["manifests"], json!([]));
    let r = s
        .http
        .get(s.u("/v2/signed/referrers/sha256:zz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn deletion_disabled() {
    let s = start().await;
    let (md, _) = push_image(&s.http, &s.url, "keep", "latest", "k").await;
    for path in [
        format!("/v2/keep/manifests/{md}"),
        "/v2/keep/manifests/latest".into(),
    ] {
        let r = s.http.delete(s.u(&path)).send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert_eq!(error_code(r).await, "UNSUPPORTED");
    }
    let d = push_blob(&s.http, &s.url, "keep", b"blob").await;
    let r = s
        .http
        .delete(s.u(&format!("/v2/keep/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = s
        .http
        .get(s.u(&format!("/v2/keep/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn deletion_enabled() {
    let s = start_with(|c, _| c.delete_enabled = true).await;
    let (md, _) = push_image(&s.http, &s.url, "gone", "v1", "g").await;
    let r = s
        .http
        .put(s.u("/v2/gone/manifests/v2"))
        .header("Content-Type", OCI_MANIFEST)
        .body(
            s.http
                .get(s.u("/v2/gone/manifests/v1"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Delete a tag.
    let r = s
        .http
        .delete(s.u("/v2/gone/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        s.http
            .get(s.u("/v2/gone/manifests/v1"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.http
            .get(s.u("/v2/gone/manifests/v2"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Delete the manifest: its other tags go too.
    let r = s
        .http
        .delete(s.u(&format!("/v2/gone/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        s.http
            .get(s.u(&format!("/v2/gone/manifests/{md}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.http
            .get(s.u("/v2/gone/manifests/v2"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = s
        .http
        .delete(s.u(&format!("/v2/gone/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    // Blobs.
    let d = push_blob(&s.http, &s.url, "gone", b"bye").await;
    let r = s
        .http
        .delete(s.u(&format!("/v2/gone/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        s.http
            .head(s.u(&format!("/v2/gone/blobs/{d}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = s
        .http
        .delete(s.u(&format!("/v2/gone/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn read_only() {
    let dir = tempfile::tempdir().unwrap();
    // Fill a root first, then serve it read-only.
    let root = dir.path().join("shared-root");
    let mut cfg = config(dir.path());
    cfg.root = root.clone();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let w = berth_registry::spawn(l, cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let url = w.url(false);
    push_image(&http, &url, "ro", "latest", "r").await;
    w.shutdown().await;
    cfg.read_only = true;
    cfg.delete_enabled = true;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ro = berth_registry::spawn(l, cfg).await.unwrap();
    let url = ro.url(false);
    let r = http
        .get(format!("{url}/v2/ro/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{url}/v2/ro/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(error_code(r).await, "UNSUPPORTED");
    let r = http
        .delete(format!("{url}/v2/ro/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = http
        .put(format!("{url}/v2/ro/manifests/other"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn basic_auth() {
    let s = start_with(|c, dir| c.htpasswd = Some(htpasswd(dir, "alice", "s3cret"))).await;
    let r = s.http.get(s.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"berth-registry\""
    );
    assert_eq!(error_code(r).await, "UNAUTHORIZED");
    let r = s
        .http
        .get(s.u("/v2/"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .http
        .get(s.u("/v2/"))
        .basic_auth("mallory", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .http
        .get(s.u("/v2/"))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.http.get(s.u("/v2/x/tags/list")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .http
        .post(s.u(&format!("/v2/x/blobs/uploads/?digest={}", digest(b"a"))))
        .basic_auth("alice", Some("s3cret"))
        .body("a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn token_auth() {
    let s = start_with(|c, dir| {
        c.htpasswd = Some(htpasswd(dir, "bob", "pw"));
        c.token_auth = true;
    })
    .await;
    let r = s
        .http
        .get(s.u("/v2/team/app/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        challenge,
        format!("Bearer realm=\"{}/token\",service=\"berth-registry\",scope=\"repository:team/app:pull\"", s.url)
    );
    assert_eq!(error_code(r).await, "UNAUTHORIZED");
    let r = s
        .http
        .post(s.u("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("scope=\"repository:team/app:pull,push\""));
    // Wrong password at the token endpoint.
    let r = s
        .http
        .get(s.u("/token?service=berth-registry&scope=repository:team/app:pull"))
        .basic_auth("bob", Some("bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Anonymous token: issued, but grants nothing.
    let v: Value = s
        .http
        .get(s.u("/token?service=berth-registry&scope=repository:team/app:pull"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let anon = v["token"].as_str().unwrap().to_string();
    let r = s
        .http
        .get(s.u("/v2/team/app/tags/list"))
        .bearer_auth(&anon)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    // A real token.
    let v: Value = s
        .http
        .get(s.u("/token?service=berth-registry&scope=repository:team/app:pull,push"))
        .basic_auth("bob", Some("pw"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tok = v["access_token"].as_str().unwrap().to_string();
    assert!(v["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(
        s.http
            .get(s.u("/v2/"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = s
        .http
        .post(s.u(&format!(
            "/v2/team/app/blobs/uploads/?digest={}",
            digest(b"t")
        )))
        .bearer_auth(&tok)
        .body("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The token does not reach other repositories.
    let r = s
        .http
        .get(s.u("/v2/team/other/tags/list"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Garbage token.
    let r = s
        .http
        .get(s.u("/v2/"))
        .bearer_auth("nonsense")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    // OAuth2 password grant with a refresh token, then the refresh grant.
    let v: Value = s.http.post(s.u("/token")).header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=bob&password=pw&service=berth-registry&scope=repository%3Ateam%2Fapp%3Apull&access_type=offline&client_id=test")
        .send().await.unwrap().json().await.unwrap();
    let refresh = v["refresh_token"].as_str().unwrap().to_string();
    let v: Value = s.http.post(s.u("/token"))
        .body(format!("grant_type=refresh_token&refresh_token={refresh}&service=berth-registry&scope=repository%3Ateam%2Fapp%3Apull"))
        .send().await.unwrap().json().await.unwrap();
    let tok2 = v["access_token"].as_str().unwrap();
    assert_eq!(
        s.http
            .get(s.u("/v2/team/app/tags/list"))
            .bearer_auth(tok2)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn token_auth_without_htpasswd_is_refused_unless_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.token_auth = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = match berth_registry::spawn(listener, cfg.clone()).await {
        Ok(_) => panic!("--token-auth without --htpasswd was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("--token-auth without --htpasswd") && err.contains("--read-only"),
        "{err}"
    );
    cfg.read_only = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(berth_registry::spawn(listener, cfg).await.is_ok());
}

#[tokio::test]
async fn token_expiry() {
    let s = start_with(|c, _| {
        c.token_auth = true;
        c.read_only = true;
        c.token_ttl = std::time::Duration::from_millis(300);
    })
    .await;
    // A read-only registry without htpasswd hands anyone a token.
    let v: Value = s
        .http
        .get(s.u("/token?scope=repository:pub:pull"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tok = v["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.http
            .get(s.u("/v2/"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        s.http
            .get(s.u("/v2/"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn tls() {
    let s = start_with(|c, dir| {
        c.tls_cert = Some(fixture("cert.pem"));
        c.tls_key = Some(fixture("key.pem"));
        c.htpasswd = Some(htpasswd(dir, "tess", "pw"));
        c.token_auth = true;
    })
    .await;
    assert!(s.url.starts_with("https://127.0.0.1:"));
    let r = s.http.get(s.u("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains(&format!("realm=\"{}/token\"", s.url)));
    let d = push_blob_tls(&s).await;
    assert_eq!(d.to_string().len(), 71);
}

async fn push_blob_tls(s: &TestServer) -> berth_registry::Digest {
    let v: Value = s
        .http
        .get(s.u("/token?scope=repository:tls:pull,push"))
        .basic_auth("tess", Some("pw"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tok = v["token"].as_str().unwrap();
    let d = digest(b"over tls");
    let r = s
        .http
        .post(s.u(&format!("/v2/tls/blobs/uploads/?digest={d}")))
        .bearer_auth(tok)
        .body("over tls")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = s
        .http
        .get(s.u(&format!("/v2/tls/blobs/{d}")))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), b"over tls");
    d
}

#[tokio::test]
async fn path_traversal_is_refused() {
    let s = start_with(|c, _| c.delete_enabled = true).await;
    // A file outside the root that a traversal would reach.
    let secret = s.dir.path().join("secret");
    std::fs::write(&secret, "do not serve").unwrap();
    let secret_digest = digest(b"do not serve");
    let attempts = [
        "/v2/../manifests/latest".to_string(),
        "/v2/..%2f..%2fsecret/manifests/latest".into(),
        "/v2/a/%2e%2e/%2e%2e/tags/list".into(),
        "/v2/a/..%2F..%2F..%2Fsecret/tags/list".into(),
        "/v2/a/manifests/..%2f..%2f..%2fsecret".into(),
        "/v2/a/manifests/..".into(),
        "/v2/a/blobs/sha256:..%2f..%2f..%2fsecret".into(),
        "/v2/a/blobs/sha256%3A..%2F..%2Fsecret".into(),
        "/v2/a/blobs/uploads/..%2f..%2fsecret".into(),
        "/v2/a/blobs/uploads/../../secret".into(),
        "/v2/_uploads/tags/list".into(),
        "/v2/a/_layers/tags/list".into(),
        format!("/v2/a/blobs/{secret_digest}"),
        "/v2/A/tags/list".into(),
        "/v2/a%00b/tags/list".into(),
    ];
    for path in &attempts {
        for m in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
            reqwest::Method::PATCH,
        ] {
            let r = s
                .http
                .request(m.clone(), s.u(path))
                .body("x")
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            assert!((400..500).contains(&st) && st != 401, "{m} {path}: {st}");
            let body = r.text().await.unwrap();
            assert!(!body.contains("do not serve"), "{m} {path} leaked");
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "do not serve");
    // Mount from a traversal name.
    let r = s
        .http
        .post(s.u(&format!(
            "/v2/a/blobs/uploads/?mount={secret_digest}&from=..%2F..%2F"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Nothing was created outside the root.
    let entries: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
}

#[tokio::test]
async fn garbage_collection() {
    let s = start_with(|c, _| c.delete_enabled = true).await;
    let (keep, kbytes) = push_image(&s.http, &s.url, "gc/keep", "latest", "keep").await;
    let (drop, _) = push_image(&s.http, &s.url, "gc/drop", "latest", "drop").await;
    let orphan = push_blob(&s.http, &s.url, "gc/keep", b"orphan blob").await;
    let r = s
        .http
        .delete(s.u(&format!("/v2/gc/drop/manifests/{drop}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let root = s.root();
    let dry = berth_registry::gc(&root, true).unwrap();
    // The orphan, plus the dropped image's manifest, config and layer.
    assert_eq!(dry.blobs_removed.len(), 4, "{dry:?}");
    assert!(dry.blobs_removed.contains(&orphan));
    assert!(dry.blobs_removed.contains(&drop));
    assert!(root.join("blobs/sha256").join(orphan.hex()).exists());
    let report = berth_registry::gc(&root, false).unwrap();
    assert_eq!(report.blobs_removed, dry.blobs_removed);
    assert_eq!(report.blobs_kept, 3);
    assert!(!root.join("blobs/sha256").join(orphan.hex()).exists());
    assert_eq!(
        s.http
            .head(s.u(&format!("/v2/gc/keep/blobs/{orphan}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The kept image still pulls completely.
    let r = s
        .http
        .get(s.u("/v2/gc/keep/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &kbytes[..]);
    let m: Value = serde_json::from_slice(&kbytes).unwrap();
    for d in [&m["config"]["digest"], &m["layers"][0]["digest"]] {
        let r = s
            .http
            .get(s.u(&format!("/v2/gc/keep/blobs/{}", d.as_str().unwrap())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let _ = keep;
    let again = berth_registry::gc(&root, false).unwrap();
    assert!(again.blobs_removed.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_blob_downloads() {
    let s = start().await;
    let data: Vec<u8> = (0..(16u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let d = push_blob(&s.http, &s.url, "big", &data).await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let http = s.http.clone();
        let url = s.u(&format!("/v2/big/blobs/{d}"));
        tasks.push(tokio::spawn(async move {
            let mut r = http.get(url).send().await.unwrap();
            let mut h = berth_registry::reference::Algorithm::Sha256.hasher();
            let mut n = 0;
            while let Some(c) = r.chunk().await.unwrap() {
                h.update(&c);
                n += c.len();
            }
            (n, h.finish())
        }));
    }
    for t in tasks {
        let (n, got) = t.await.unwrap();
        assert_eq!(n, data.len());
        assert_eq!(got, d);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("4 x 16 MiB in {secs:.2}s: {:.0} MiB/s", 64.0 / secs);
}
