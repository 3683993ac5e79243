//! `ferry serve`'s request path on arbitrary bytes fed into one connection (HTTP/1.1 or
//! HTTP/2, whatever the bytes say), against a tiny bundle: never panic, never hang (the
//! connection ends within 10 s of the input ending), and every HTTP/1 answer is a status line.
//!
//! Input: the bytes a client sends.
#![no_main]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferry_serve::catalog::Catalog;
use ferry_serve::check::Checks;
use ferry_serve::metrics::Metrics;
use ferry_serve::status::Setup;
use ferry_serve::{LogStyle, Served, serve_io};
use ferry_store::bundle::BundleReader;
use ferry_store::bundle::BundleSet;
use ferry_store::bundle::BundleSource;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The tiny bundle of the bundle reader's seeds: one image, three blobs.
const BUNDLE: &[u8] = include_bytes!("../seeds/bundle_reader/tiny");

struct World {
    runtime: tokio::runtime::Runtime,
    served: Arc<Served>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/scratch");
        std::fs::create_dir_all(&dir).expect("create the scratch dir");
        let path = dir.join(format!("served-{}.tar", std::process::id()));
        std::fs::write(&path, BUNDLE).expect("write the bundle");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let served = runtime.block_on(async {
            let source = BundleSource::new(BundleReader::open(&path).expect("the seed bundle"));
            let catalog = Arc::new(
                Catalog::build(BundleSet::new(vec![source]), "", 2, &Default::default())
                    .await
                    .expect("catalog"),
            );
            assert!(catalog.images() > 0, "the seed bundle serves an image");
            let checks = Arc::new(Checks::new(catalog.clone()));
            Arc::new(Served {
                metrics: Some(Arc::new(Metrics::new(checks.clone(), catalog.images()))),
                checks,
                catalog,
                htpasswd: None,
                log: LogStyle::Off,
                setup: Setup::plain("127.0.0.1:5000".parse().expect("addr")),
            })
        });
        World { runtime, served }
    })
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let client: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    world.runtime.block_on(async {
        let (mut peer, server) = tokio::io::duplex(64 * 1024);
        let serving = tokio::spawn(serve_io(world.served.clone(), server, client));
        let (mut reader, mut writer) = tokio::io::split(&mut peer);
        let send = async {
            let _ = writer.write_all(data).await;
            let _ = writer.shutdown().await;
        };
        let mut answer = Vec::new();
        let receive = async {
            let _ = (&mut reader).take(64 << 20).read_to_end(&mut answer).await;
        };
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(send, receive);
        })
        .await;
        assert!(ended.is_ok(), "the connection did not end after its input did");
        if !data.starts_with(b"PRI * HTTP/2.0") && !answer.is_empty() {
            assert!(answer.starts_with(b"HTTP/1."), "not an HTTP/1 answer: {:?}", &answer[..answer.len().min(64)]);
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
    });
});
