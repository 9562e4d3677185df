//! What the server keeps in memory. Everything durable (containers, images, events, exec
//! records) lives in the store; the server holds only what belongs to open connections.

use crate::pool::Pool;
use berth_engine::EngineConfig;

pub struct State {
    pub pool: Pool,
}

impl State {
    pub fn new(config: EngineConfig) -> State {
        State {
            pool: Pool::new(config),
        }
    }
}
