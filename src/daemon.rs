//! What the two daemons (`serve verifier`, `serve buyer`) share: reading `--listen`, serving
//! one or more listeners under [`Limits`] (header and idle timeouts, a connection cap derived
//! from the open-file limit, an in-flight cap that answers 503) until a shutdown signal, then
//! draining in-flight requests for a bounded time.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::Semaphore;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Why `--listen` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid listen address {0:?}: use :PORT or HOST:PORT")]
    Invalid(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Sets glibc's allocator up for a long-running daemon; call before any thread starts.
///
/// At most two malloc arenas (glibc's default is eight per core, each keeping its own free
/// memory), and a fixed mmap threshold of 128 KiB: without it glibc raises the threshold each
/// time a large block is freed, so the big tables of a reload end up in the heap, where they
/// fragment it instead of going back to the OS when freed. Measured on a verifier with 10,000
/// routes reloading every 300 ms under load: peak resident size 54 → 42 MiB
/// (docs/benchmarks.md); request throughput unchanged.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_allocator() {
    const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
    const M_ARENA_MAX: std::ffi::c_int = -8;
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    // SAFETY: glibc's mallopt only changes allocator parameters; both values are in range.
    unsafe {
        mallopt(M_ARENA_MAX, 2);
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Nothing to tune outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// Resolves `--listen`: `:8080` means every interface; `HOST:PORT` may name a host.
pub async fn listen_addr(listen: &str) -> Result<SocketAddr, ListenError> {
    let s = listen.trim();
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    if let Ok(a) = full.parse::<SocketAddr>() {
        return Ok(a);
    }
    tokio::net::lookup_host(&full)
        .await
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| ListenError::Invalid(listen.to_string()))
}

/// Resolves `--listen` and binds it.
pub async fn bind(listen: &str) -> Result<tokio::net::TcpListener, ListenError> {
    let addr = listen_addr(listen).await?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// How much a daemon lets its clients hold: time to send request headers, idle time, open
/// connections and requests in flight. Shared by every listener of one [`serve_all`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A connection must have sent a complete request head this long after it opened (and,
    /// for HTTP/1.1, after its previous response); otherwise it is closed (slowloris).
    pub header_timeout: Duration,
    /// A connection on which no request started for this long is closed (once the request
    /// it may still be answering is done).
    pub idle_timeout: Duration,
    /// Open connections at most; at the cap, no new one is accepted until one closes.
    pub max_connections: u32,
    /// Requests being handled at most (up to their response head); beyond, 503
    /// `overloaded` with `Retry-After`. `/healthz` and `/readyz` do not count.
    pub max_in_flight: u32,
    /// The soft RLIMIT_NOFILE the caps were derived from, for the startup log line.
    pub nofile: Option<u64>,
}

/// What the flags give when nothing is set: see `obol serve verifier --help`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1024;

/// Seconds a client told `503 overloaded` is asked to wait (`Retry-After`).
const OVERLOADED_RETRY_AFTER_SECS: u64 = 1;

/// How often one kind of accept trouble is logged at most (with a count of the ones skipped).
const LOG_EVERY: Duration = Duration::from_secs(60);

impl Default for Limits {
    fn default() -> Self {
        Limits::new(
            DEFAULT_HEADER_TIMEOUT,
            DEFAULT_IDLE_TIMEOUT,
            DEFAULT_MAX_CONNECTIONS,
            DEFAULT_MAX_IN_FLIGHT,
            raise_nofile_limit(),
        )
    }
}

impl Limits {
    /// The configured caps, lowered so that connections plus the upstream connections of
    /// requests in flight fit under the soft file-descriptor limit `nofile` (with room for
    /// the state file, logs and pools): connections get at most `nofile - reserve`, requests
    /// in flight at most `reserve - 32`, where `reserve = max(64, nofile / 4)`.
    pub fn new(
        header_timeout: Duration,
        idle_timeout: Duration,
        max_connections: u32,
        max_in_flight: u32,
        nofile: Option<u64>,
    ) -> Limits {
        let (mut conns, mut in_flight) = (max_connections.max(1), max_in_flight.max(1));
        if let Some(n) = nofile {
            let reserve = (n / 4).max(64);
            let conn_room = if n > 2 * reserve { n - reserve } else { n / 2 };
            let flight_room = reserve.saturating_sub(32).min(n / 4).max(1);
            conns = conns.min(u32::try_from(conn_room.max(1)).unwrap_or(u32::MAX));
            in_flight = in_flight.min(u32::try_from(flight_room).unwrap_or(u32::MAX));
        }
        Limits {
            header_timeout,
            idle_timeout,
            max_connections: conns,
            max_in_flight: in_flight,
            nofile,
        }
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "header-timeout={:?} idle-timeout={:?} max-connections={} max-in-flight={}",
            self.header_timeout, self.idle_timeout, self.max_connections, self.max_in_flight
        )?;
        if let Some(n) = self.nofile {
            write!(f, " (open-file limit {n})")?;
        }
        Ok(())
    }
}

/// Raises the soft open-file limit to the hard one (as Go programs do at start) and returns
/// the soft limit then in force; `None` where it cannot be read.
#[cfg(unix)]
pub fn raise_nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
pub fn raise_nofile_limit() -> Option<u64> {
    None
}

static INSTALLED: std::sync::OnceLock<Limits> = std::sync::OnceLock::new();

/// Sets the limits [`serve`] uses in this process (the command layer calls it once from the
/// flags). A second call changes nothing.
pub fn set_limits(limits: Limits) {
    let _ = INSTALLED.set(limits);
}

/// The limits [`serve`] uses: those of [`set_limits`], else [`Limits::default`].
pub fn limits() -> Limits {
    *INSTALLED.get_or_init(Limits::default)
}

/// Serves `router` on `listener` with [`limits`] until `shutdown` resolves; see [`serve_all`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_all(vec![(listener, router)], &limits(), shutdown).await
}

/// Serves each router on its listener until `shutdown` resolves; then every listener stops
/// accepting and in-flight requests on all of them get [`DRAIN_LIMIT`] to finish before this
/// returns anyway. Handlers may extract the peer's address (`ConnectInfo<SocketAddr>`).
///
/// `limits` hold for all listeners together: the connection cap is one budget of file
/// descriptors for the process, the in-flight cap one budget of work.
///
/// The returned future borrows nothing (it can be spawned).
pub fn serve_all(
    sites: Vec<(tokio::net::TcpListener, axum::Router)>,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    serve_sites(sites, *limits, shutdown)
}

async fn serve_sites(
    sites: Vec<(tokio::net::TcpListener, axum::Router)>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!("connection limits: {limits}");
    let shared = Arc::new(Shared {
        builder: http_builder(&limits),
        connections: Arc::new(Semaphore::new(limits.max_connections as usize)),
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight as usize)),
        limits,
        at_cap: LogBurst::default(),
        accept_failing: LogBurst::default(),
        stop: tokio::sync::watch::channel(false).0,
    });
    let accepting = futures_util::future::join_all(
        sites
            .into_iter()
            .map(|(listener, router)| accept_loop(listener, router, Arc::clone(&shared))),
    );
    tokio::select! {
        _ = accepting => {}
        () = shutdown => {}
    }
    // The listeners are closed now (dropped with `accepting`).
    tracing::info!("shutting down: draining in-flight requests");
    shared.stop.send_replace(true);
    let all_closed = shared.connections.acquire_many(limits.max_connections);
    if tokio::time::timeout(DRAIN_LIMIT, all_closed).await.is_err() {
        tracing::warn!("in-flight requests still running after {DRAIN_LIMIT:?}; exiting");
    }
    Ok(())
}

/// What the accept loops and connections of one [`serve_all`] share.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    /// One permit per open connection.
    connections: Arc<Semaphore>,
    /// One permit per request being handled.
    in_flight: Arc<Semaphore>,
    limits: Limits,
    at_cap: LogBurst,
    accept_failing: LogBurst,
    /// `true` once shutdown began: connections finish what they are answering, then close.
    stop: tokio::sync::watch::Sender<bool>,
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    b.http2().timer(TokioTimer::new());
    b
}

/// Accepts connections while there is room for them; never returns.
async fn accept_loop(listener: tokio::net::TcpListener, router: axum::Router, shared: Arc<Shared>) {
    let limited = LoadShed::new(ConcurrencyLimit::with_semaphore(
        router.clone(),
        Arc::clone(&shared.in_flight),
    ));
    let site = Arc::new(Site { router, limited });
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let permit = match Arc::clone(&shared.connections).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if let Some(skipped) = shared.at_cap.note() {
                    tracing::warn!(
                        "connection limit reached: {} connections open (--max-connections{}); not accepting new ones until one closes{}",
                        shared.limits.max_connections,
                        shared
                            .limits
                            .nofile
                            .map(|n| format!(", open-file limit {n}"))
                            .unwrap_or_default(),
                        skipped_note(skipped),
                    );
                }
                match Arc::clone(&shared.connections).acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                }
            }
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(e) if connection_error(&e) => continue,
            Err(e) => {
                if let Some(skipped) = shared.accept_failing.note() {
                    tracing::warn!(
                        "accepting a connection failed: {e}; retrying in {backoff:?}{}",
                        skipped_note(skipped)
                    );
                }
                drop(permit);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Subscribed before shutdown can begin (this loop is dropped first), so the
        // connection sees the signal even if its task starts later.
        let stop = shared.stop.subscribe();
        tokio::spawn(connection(
            stream,
            peer,
            Arc::clone(&site),
            Arc::clone(&shared),
            stop,
            permit,
        ));
    }
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

fn skipped_note(skipped: u64) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!(" ({skipped} more times since the last report)")
    }
}

/// Errors about one connection that went away before it was accepted: nothing to wait for.
fn connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// Logs one kind of trouble at most once per [`LOG_EVERY`], counting the occurrences skipped.
#[derive(Default)]
struct LogBurst {
    last: std::sync::Mutex<Option<Instant>>,
    skipped: AtomicU64,
}

impl LogBurst {
    /// `Some(skipped since the last report)` when this occurrence should be logged.
    fn note(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(t) if now.duration_since(t) < LOG_EVERY => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.skipped.swap(0, Ordering::Relaxed))
            }
        }
    }
}

/// The router of one listener, and the same router behind the in-flight cap.
struct Site {
    router: axum::Router,
    limited: LoadShed<ConcurrencyLimit<axum::Router>>,
}

/// Serves one connection until it closes, it sends no request head in time, it stays idle,
/// or shutdown asks it to finish; holds its connection permit until then.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    site: Arc<Site>,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let started = Arc::new(AtomicU64::new(0));
    let service = ConnService {
        site,
        peer,
        started: Arc::clone(&started),
    };
    let conn = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let check = tokio::time::sleep(shared.limits.header_timeout);
    tokio::pin!(check);
    let mut seen = 0;
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            // The only change is to `true` (or the sender is gone: shutting down too).
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = check.as_mut(), if !closing => {
                let now = started.load(Ordering::Relaxed);
                if now == 0 {
                    // No complete request head since it opened: nothing to finish.
                    return;
                }
                if now == seen {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                } else {
                    seen = now;
                    check.as_mut().reset(tokio::time::Instant::now() + shared.limits.idle_timeout);
                }
            }
        }
    }
}

/// The service of one connection: counts the requests that started, adds the peer's address,
/// and lets health checks past the in-flight cap.
struct ConnService {
    site: Arc<Site>,
    peer: SocketAddr,
    started: Arc<AtomicU64>,
}

type Request = http::Request<hyper::body::Incoming>;
type Shed = fn(
    Result<axum::response::Response, tower::BoxError>,
) -> Result<axum::response::Response, Infallible>;

impl hyper::service::Service<Request> for ConnService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = futures_util::future::Either<
        axum::routing::future::RouteFuture<Infallible>,
        futures_util::future::Map<
            tower::util::Oneshot<LoadShed<ConcurrencyLimit<axum::Router>>, Request>,
            Shed,
        >,
    >;

    fn call(&self, mut req: Request) -> Self::Future {
        use futures_util::FutureExt;
        use tower::{Service, ServiceExt};
        self.started.fetch_add(1, Ordering::Relaxed);
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        let path = req.uri().path();
        if path == "/healthz" || path == "/readyz" {
            futures_util::future::Either::Left(self.site.router.clone().call(req))
        } else {
            futures_util::future::Either::Right(
                self.site.limited.clone().oneshot(req).map(shed as Shed),
            )
        }
    }
}

/// Answers a request turned away by the in-flight cap (the router itself never fails).
fn shed(
    r: Result<axum::response::Response, tower::BoxError>,
) -> Result<axum::response::Response, Infallible> {
    use axum::response::IntoResponse;
    Ok(r.unwrap_or_else(|_| {
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            [
                (
                    http::header::RETRY_AFTER,
                    OVERLOADED_RETRY_AFTER_SECS.to_string(),
                ),
                (http::header::CACHE_CONTROL, "no-store".to_string()),
            ],
            axum::Json(serde_json::json!({
                "error": "overloaded",
                "reason": "too many requests in flight; retry in a moment",
                "retriable": true,
            })),
        )
            .into_response()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listen_addresses() {
        assert_eq!(
            listen_addr(":8080").await.unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            listen_addr("127.0.0.1:9").await.unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(
            listen_addr("[::1]:9").await.unwrap(),
            "[::1]:9".parse().unwrap()
        );
        assert!(listen_addr("localhost:9").await.unwrap().ip().is_loopback());
        let err = listen_addr("nonsense").await.unwrap_err();
        assert!(err.to_string().contains("use :PORT or HOST:PORT"), "{err}");
    }

    #[tokio::test]
    async fn a_busy_port_is_a_bind_error_naming_the_address() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let err = bind(&addr).await.unwrap_err();
        assert!(matches!(err, ListenError::Bind { .. }));
        assert!(err.to_string().contains(&addr), "{err}");
    }

    #[tokio::test]
    async fn serves_until_the_signal_and_lets_a_request_in_flight_finish() {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let started_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(started_tx)));
        let router = axum::Router::new().route(
            "/slow",
            get(move || {
                let started_tx = std::sync::Arc::clone(&started_tx);
                async move {
                    if let Some(tx) = started_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }
            }),
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, async move {
            let _ = stop_rx.await;
        }));
        let request = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        });
        started_rx.await.unwrap();
        stop_tx.send(()).unwrap();
        let answer = request.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("returns once drained")
            .unwrap()
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no new connections after the shutdown"
        );
    }

    fn tight(max_connections: u32, max_in_flight: u32) -> Limits {
        Limits::new(
            Duration::from_millis(300),
            Duration::from_secs(60),
            max_connections,
            max_in_flight,
            None,
        )
    }

    async fn raw(addr: SocketAddr, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        answer
    }

    #[test]
    fn caps_fit_under_the_open_file_limit() {
        let l = |n| {
            Limits::new(
                Duration::from_secs(1),
                Duration::from_secs(1),
                4096,
                1024,
                n,
            )
        };
        assert_eq!(
            (l(None).max_connections, l(None).max_in_flight),
            (4096, 1024)
        );
        assert_eq!(
            (l(Some(256)).max_connections, l(Some(256)).max_in_flight),
            (192, 32)
        );
        assert_eq!(
            (l(Some(1024)).max_connections, l(Some(1024)).max_in_flight),
            (768, 224)
        );
        assert_eq!(
            (l(Some(100)).max_connections, l(Some(100)).max_in_flight),
            (50, 25)
        );
        let big = l(Some(1 << 20));
        assert_eq!((big.max_connections, big.max_in_flight), (4096, 1024));
        let tiny = l(Some(1));
        assert!(tiny.max_connections >= 1 && tiny.max_in_flight >= 1);
    }

    #[tokio::test]
    async fn over_the_in_flight_cap_is_a_503_with_retry_after_and_health_still_answers() {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (entered_tx, mut entered_rx) = tokio::sync::mpsc::channel::<()>(1);
        let release = Arc::new(tokio::sync::Notify::new());
        let hold = Arc::clone(&release);
        let router = axum::Router::new()
            .route(
                "/slow",
                get(move || {
                    let (entered_tx, hold) = (entered_tx.clone(), Arc::clone(&hold));
                    async move {
                        let _ = entered_tx.send(()).await;
                        hold.notified().await;
                        "done"
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok" }));
        let server = tokio::spawn(serve_all(
            vec![(listener, router)],
            &tight(16, 1),
            std::future::pending(),
        ));
        let first = tokio::spawn(raw(
            addr,
            "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ));
        entered_rx.recv().await.unwrap();
        let second = raw(
            addr,
            "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(second.starts_with("HTTP/1.1 503"), "{second}");
        assert!(
            second.to_ascii_lowercase().contains("retry-after: 1\r\n"),
            "{second}"
        );
        assert!(second.contains(r#""error":"overloaded""#), "{second}");
        let health = raw(
            addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        release.notify_one();
        assert!(first.await.unwrap().ends_with("done"));
        server.abort();
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_header_timeout() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_all(
            vec![(listener, axum::Router::new())],
            &tight(16, 4),
            std::future::pending(),
        ));
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
            .await
            .expect("closed by the server")
            .unwrap_or(0);
        assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
        server.abort();
    }

    #[tokio::test]
    async fn all_listeners_drain_together_on_one_signal() {
        use axum::routing::get;
        let (a, b) = (
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        );
        let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let (entered_tx, mut entered_rx) = tokio::sync::mpsc::channel::<()>(1);
        let slow = axum::Router::new().route(
            "/slow",
            get(move || {
                let entered_tx = entered_tx.clone();
                async move {
                    let _ = entered_tx.send(()).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "public"
                }
            }),
        );
        let internal = axum::Router::new().route(
            "/peer",
            get(|axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>| async move {
                peer.ip().to_string()
            }),
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_all(
            vec![(a, slow), (b, internal)],
            &Limits::default(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        let peer = raw(
            addr_b,
            "GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(peer.ends_with("127.0.0.1"), "{peer}");
        let request = tokio::spawn(raw(
            addr_a,
            "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ));
        entered_rx.recv().await.unwrap();
        stop_tx.send(()).unwrap();
        assert!(request.await.unwrap().ends_with("public"));
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("returns once drained")
            .unwrap()
            .unwrap();
        for addr in [addr_a, addr_b] {
            assert!(
                tokio::net::TcpStream::connect(addr).await.is_err(),
                "{addr} closed"
            );
        }
    }
}
