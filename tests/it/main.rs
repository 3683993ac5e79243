//! ferry's one integration-test binary: `support/` holds the harness (real registry launcher,
//! token server, fixtures, command runner); every other module is one topic.

mod support;

mod archive;
mod archive_hostile;
mod bounds;
mod delta;
mod ecr;
mod edges;
mod errors;
mod export;
mod faults;
mod harness;
mod hostile;
mod http_version;
mod images;
mod import;
mod inspect;
mod kdm;
mod kdm_hostile;
mod keyless;
mod layers;
mod lock;
mod lying;
mod peers;
mod referrers;
mod registry_client;
mod scale;
mod serve;
mod serve_status;
mod shapes;
mod signatures;
mod split;
mod trim;
mod trim_e2e;
mod verify;
