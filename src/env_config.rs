//! Configuration from the Worker's environment (vars and secrets), parsed by `icc-core`.

use icc_core::config::Config;
use worker::Env;

/// Reads every setting; cheap enough to do per request.
pub fn load(env: &Env) -> Config {
    Config::from_lookup(&|name: &str| env.var(name).ok().map(|v| v.to_string()))
}
