//! `/networks/…`: bridge networks (the predefined `bridge`, `host` and `none`, and user ones).

use crate::http::{json_response, ok_json, read_json, status_only, ApiError, ApiResult, Query};
use crate::router::{Call, Routed};
use crate::state::State;
use berth_engine::containers::network::berth_network::CreateNetwork;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    let segs = call.segs.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = call.method.clone();
    Routed::Done(match (method.as_str(), s.as_slice()) {
        ("GET", ["networks"]) => list(state, &call.query).await,
        ("POST", ["networks", "create"]) => create(state, call).await,
        ("POST", ["networks", "prune"]) => prune(state, &call.query).await,
        ("GET", ["networks", id]) => {
            let id = id.to_string();
            match state.pool.run(move |e| e.network_inspect(&id)).await {
                Ok(v) => ok_json(&v),
                Err(e) => Err(e),
            }
        }
        ("DELETE", ["networks", id]) => {
            let id = id.to_string();
            match state.pool.run(move |e| e.network_remove(&id)).await {
                Ok(_) => status_only(StatusCode::NO_CONTENT),
                Err(e) => Err(e),
            }
        }
        ("POST", ["networks", id, "connect"]) => {
            let id = id.to_string();
            connect(state, call, id).await
        }
        ("POST", ["networks", id, "disconnect"]) => {
            let id = id.to_string();
            disconnect(state, call, id).await
        }
        _ => return Routed::Next(call),
    })
}

/// `GET /networks?filters=`: each network in `GET /networks/{id}`'s shape.
async fn list(state: &Arc<State>, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    let v = state
        .pool
        .run(move |e| {
            let mut out = Vec::new();
            for n in e.network_list_filtered(&filters)? {
                out.push(e.network_inspect(&n.id)?);
            }
            Ok(out)
        })
        .await?;
    ok_json(&v)
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    #[serde(default)]
    driver: String,
    #[serde(default)]
    config: Option<Vec<IpamConfig>>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    #[serde(default)]
    subnet: String,
    #[serde(default)]
    gateway: String,
    #[serde(default, rename = "IPRange")]
    ip_range: String,
    #[serde(default)]
    aux_address: Option<BTreeMap<String, String>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    attachable: bool,
    #[serde(default)]
    ingress: bool,
    #[serde(default, rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(default, rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    config_only: bool,
    #[serde(default)]
    config_from: Option<Value>,
    /// Ignored by dockerd since API 1.44 (names are always checked).
    #[serde(default)]
    #[allow(dead_code)]
    check_duplicate: Option<bool>,
}

/// `POST /networks/create`: 201 `{"Id": …, "Warning": ""}`.
async fn create(state: &Arc<State>, call: Call) -> ApiResult {
    let body: CreateBody = read_json(call.req).await?.unwrap_or_default();
    if body.name.is_empty() {
        return Err(ApiError::bad_request("network name is required: give Name"));
    }
    if !matches!(body.driver.as_str(), "" | "bridge") {
        return Err(ApiError::not_found(format!(
            "plugin \"{}\" not found: berth supports the bridge driver only",
            body.driver
        )));
    }
    if body.ingress || body.config_only || body.config_from.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(
            "Ingress, ConfigOnly and ConfigFrom need swarm mode, which berth does not have",
        ));
    }
    if !matches!(body.scope.as_str(), "" | "local") {
        return Err(ApiError::bad_request(format!(
            "scope {:?} is not supported: berth's networks are local",
            body.scope
        )));
    }
    if body.options.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "driver options are not supported by berth's bridge driver: leave Options out",
        ));
    }
    // Attachable only matters to swarm services; every berth network takes any container.
    let _ = body.attachable;
    let mut subnets = Vec::new();
    let mut gateways = Vec::new();
    if let Some(ipam) = &body.ipam {
        if !matches!(ipam.driver.as_str(), "" | "default") {
            return Err(ApiError::not_found(format!(
                "plugin \"{}\" not found: berth has the default IPAM driver only",
                ipam.driver
            )));
        }
        if ipam.options.as_ref().is_some_and(|o| !o.is_empty()) {
            return Err(ApiError::bad_request(
                "IPAM options are not supported by berth: leave IPAM.Options out",
            ));
        }
        for c in ipam.config.iter().flatten() {
            if !c.ip_range.is_empty() || c.aux_address.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(ApiError::bad_request(
                    "IPRange and AuxiliaryAddresses are not supported by berth: give Subnet and Gateway only",
                ));
            }
            if !c.subnet.is_empty() {
                subnets.push(c.subnet.clone());
            }
            if !c.gateway.is_empty() {
                gateways.push(c.gateway.clone());
            }
        }
    }
    let mut req = CreateNetwork {
        name: body.name,
        internal: body.internal,
        labels: body.labels.unwrap_or_default(),
        ipv6: body.enable_ipv6.unwrap_or(false),
        ..Default::default()
    };
    req.set_pools(&subnets, &gateways)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let n = state.pool.run(move |e| e.network_create(&req)).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": n.id, "Warning": ""}),
    ))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConnectBody {
    #[serde(default)]
    container: String,
    #[serde(default)]
    endpoint_config: Option<EndpointConfig>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct EndpointConfig {
    #[serde(default, rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    links: Option<Vec<String>>,
    #[serde(default, rename = "DriverOpts")]
    driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct EndpointIpam {
    #[serde(default, rename = "IPv4Address")]
    ipv4_address: String,
    #[serde(default, rename = "IPv6Address")]
    ipv6_address: String,
    #[serde(default, rename = "LinkLocalIPs")]
    link_local_ips: Option<Vec<String>>,
}

/// `POST /networks/{id}/connect`: `Aliases` and `IPAMConfig.IPv4Address`, as `network connect
/// --alias --ip`; links, IPv6 addresses and driver options are refused.
async fn connect(state: &Arc<State>, call: Call, network: String) -> ApiResult {
    let body: ConnectBody = read_json(call.req).await?.unwrap_or_default();
    if body.container.is_empty() {
        return Err(ApiError::bad_request(
            "Container is required: name the container to connect",
        ));
    }
    let ec = body.endpoint_config.unwrap_or_default();
    if ec.links.as_ref().is_some_and(|l| !l.is_empty())
        || ec.driver_opts.as_ref().is_some_and(|o| !o.is_empty())
    {
        return Err(ApiError::bad_request(
            "Links and DriverOpts are not supported by berth's network connect: use aliases",
        ));
    }
    let ipam = ec.ipam_config.unwrap_or_default();
    if !ipam.ipv6_address.is_empty() || ipam.link_local_ips.as_ref().is_some_and(|l| !l.is_empty())
    {
        return Err(ApiError::bad_request(
            "IPv6Address and LinkLocalIPs are not supported by berth's network connect: give IPv4Address only",
        ));
    }
    let aliases = ec.aliases.unwrap_or_default();
    let ip = Some(ipam.ipv4_address).filter(|s| !s.is_empty());
    let container = body.container;
    state
        .pool
        .run(move |e| e.network_connect(&network, &container, &aliases, ip.as_deref()))
        .await?;
    status_only(StatusCode::OK)
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DisconnectBody {
    #[serde(default)]
    container: String,
    #[serde(default)]
    force: bool,
}

async fn disconnect(state: &Arc<State>, call: Call, network: String) -> ApiResult {
    let body: DisconnectBody = read_json(call.req).await?.unwrap_or_default();
    if body.container.is_empty() {
        return Err(ApiError::bad_request(
            "Container is required: name the container to disconnect",
        ));
    }
    let container = body.container;
    let force = body.force;
    let r = state
        .pool
        .run(move |e| e.network_disconnect(&network, &container))
        .await;
    match r {
        Ok(()) => status_only(StatusCode::OK),
        // dockerd's force: a container that is gone is no error.
        Err(e) if force && e.status == StatusCode::NOT_FOUND => status_only(StatusCode::OK),
        Err(e) => Err(e),
    }
}

/// `POST /networks/prune?filters=`: `until=`, `label=`, `label!=`.
async fn prune(state: &Arc<State>, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    let removed = state.pool.run(move |e| e.network_prune(&filters)).await?;
    ok_json(&json!({
        "NetworksDeleted": if removed.is_empty() { Value::Null } else { json!(removed) },
    }))
}
