//! Heap used by the verifier's reload of a 10,000-offer file, for `benches/verifier_load.sh`.
//!
//! Counts every allocation (a wrapping global allocator) while the verifier's own route source
//! loads an offers file, then reloads it after the file changed in every price — what happens
//! under `obol sell` edits. Prints the live heap after each load and the peak during the
//! reload: the peak is what the resident size must make room for.
//!
//! `cargo run --release --example reload_memory -- [ROUTES]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use obol::verifier::metrics::Metrics;
use obol::verifier::routes::{self, RouteSource, SourceKind, SourceState, Stamp};
use obol::x402::facilitator::{FacilitatorClient, FacilitatorConfig};
use obol::x402::networks::Registry;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mib(b: usize) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

/// The offers file as `obol sell create` writes it, every offer at `price`.
fn offers_yaml(n: usize, price: &str) -> String {
    let pay_to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
    let mut yaml = format!("wallet: \"{pay_to}\"\nchain: base-sepolia\nroutes:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - pattern: /services/offer-{i}/*\n    price: '{price}'\n    offerNamespace: local\n    offerName: offer-{i}\n    upstreamURL: http://127.0.0.1:9000\n    stripPrefix: /services/offer-{i}\n"
        ));
    }
    yaml
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ROUTES"))
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("obol-reload-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("pricing.yaml");
    std::fs::write(&path, offers_yaml(n, "0.01")).expect("write");
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let facilitator_config = FacilitatorConfig::default();
    let source = RouteSource {
        path: path.clone(),
        registry: Registry::builtin(),
        facilitator_override: Some("http://127.0.0.1:9".into()),
        facilitator_config: facilitator_config.clone(),
        http: reqwest::Client::new(),
        verify_only: None,
        metrics: Arc::new(Metrics::new()),
        kind: SourceKind::File,
        state: SourceState::default(),
    };
    let facilitator =
        Arc::new(FacilitatorClient::new("http://127.0.0.1:9", facilitator_config).unwrap());
    let current = ArcSwap::from_pointee(routes::not_loaded(facilitator));
    let mut stamp = Stamp::default();

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let loaded = source.load_if_changed(&mut stamp, &current).expect("load");
    let first_peak = PEAK.load(Ordering::Relaxed) - before;
    let after_first = LIVE.load(Ordering::Relaxed) - before;

    // Every price changes: a full rebuild.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&path, offers_yaml(n, "0.02")).expect("write");
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let reloaded = source
        .load_if_changed(&mut stamp, &current)
        .expect("reload");
    let reload_peak = PEAK.load(Ordering::Relaxed) - before;
    let after_reload = LIVE.load(Ordering::Relaxed) - before;
    let _ = std::fs::remove_dir_all(&dir);
    if std::env::var_os("BREAKDOWN").is_some() {
        let text = offers_yaml(n, "0.03");
        let b = LIVE.load(Ordering::Relaxed);
        PEAK.store(b, Ordering::Relaxed);
        let cfg = obol::offers::config::parse(&text, &path).unwrap();
        println!(
            "parse: peak_mib={} retained_mib={}",
            mib(PEAK.load(Ordering::Relaxed) - b),
            mib(LIVE.load(Ordering::Relaxed) - b)
        );
        let b1 = LIVE.load(Ordering::Relaxed);
        PEAK.store(b1, Ordering::Relaxed);
        let cfg2: obol::offers::PricingConfig = serde_saphyr::from_str(&text).unwrap();
        println!(
            "saphyr parse: peak_mib={} retained_mib={} same={}",
            mib(PEAK.load(Ordering::Relaxed) - b1),
            mib(LIVE.load(Ordering::Relaxed) - b1),
            cfg2 == cfg
        );
        drop(cfg2);
        let b2 = LIVE.load(Ordering::Relaxed);
        PEAK.store(b2, Ordering::Relaxed);
        let routes = obol::offers::resolve(&cfg, &Registry::builtin()).unwrap();
        println!(
            "resolve: peak_mib={} retained_mib={}",
            mib(PEAK.load(Ordering::Relaxed) - b2),
            mib(LIVE.load(Ordering::Relaxed) - b2),
        );
        let b3 = LIVE.load(Ordering::Relaxed);
        let m = Metrics::new();
        let series: Vec<_> = routes
            .iter()
            .map(|r| m.series(&r.offer_namespace, &r.offer_name, r.chain()))
            .collect();
        println!(
            "metrics series: retained_mib={}",
            mib(LIVE.load(Ordering::Relaxed) - b3)
        );
        drop((series, routes, cfg));
    }
    assert_eq!(loaded, Some(n));
    assert_eq!(reloaded, Some(n));
    println!(
        "routes={n} file_mib={} first_load_peak_mib={} table_mib={} reload_peak_mib={} after_reload_mib={}",
        mib(file_bytes as usize),
        mib(first_peak),
        mib(after_first),
        mib(reload_peak),
        mib(after_reload),
    );
}
