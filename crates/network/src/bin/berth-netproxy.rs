//! `berth-netproxy CONFIG-JSON`: the per-container port proxy and embedded DNS responder
//! (see `berth_network::proxy`). Started by the engine; not meant to be run by hand.

fn main() {
    let Some(arg) = std::env::args().nth(1) else {
        eprintln!("usage: berth-netproxy CONFIG-JSON");
        std::process::exit(2);
    };
    let cfg: berth_network::proxy::ProxyConfig = match serde_json::from_str(&arg) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-netproxy: bad config: {e}");
            std::process::exit(2);
        }
    };
    berth_network::proxy::run(cfg)
}
