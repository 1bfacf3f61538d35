use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{progress, Target};
use crate::format::gptme::{self, GPTME_VERSION, GPTME_VERSIONS_CHECKED};
use crate::index::Index;
use crate::refresh::{Options, Stats};
use crate::server::{self, AppState, Config, SqlConfig, UpstreamCheck};
use crate::watch::Watch;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    target: Target,
    /// Where to listen: HOST:PORT, or unix:PATH for a Unix socket (for a proxy on this host; its
    /// file's permissions say who may connect), or unix:@NAME for one in Linux's abstract
    /// namespace (no file; any local user may connect, as to a loopback port). gptme-server's
    /// default is 5700; gptme's web UI, loaded from port 5701, 5173 or 4173, does not take the
    /// page's own server for its API, so not those. Started by systemd with a socket (a .socket
    /// unit), that socket instead.
    #[arg(long, default_value = "127.0.0.1:5702", value_name = "HOST:PORT|unix:PATH|unix:@NAME")]
    addr: String,
    /// A gptme-server to forward every other route to (the web UI, conversations, events).
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// The bearer token clients must send [default: $GPTME_SERVER_TOKEN]. Without one, in front
    /// of a gptme-server (--upstream), the token it made up and shares while it runs
    /// ($XDG_DATA_HOME/gptme/server-token) is asked for; else auth is off and only loopback
    /// addresses may be bound. GPTME_DISABLE_AUTH=true turns auth off.
    #[arg(long, env = "GPTME_SERVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Origins a browser may call from (comma-separated, or `*`), answered with CORS headers.
    #[arg(long = "cors-origin", value_name = "ORIGIN[,ORIGIN…]", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Without a token, `Host` names to serve besides local ones (a reverse proxy's name)
    /// [default: $GPTME_SERVER_ALLOWED_HOSTS, as gptme-server reads it].
    #[arg(
        long = "allowed-hosts",
        env = "GPTME_SERVER_ALLOWED_HOSTS",
        value_name = "NAME[,NAME…]",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
    /// Use filesystem notifications: a request refreshes only what changed, not a sweep.
    #[arg(long)]
    watch: bool,
    /// In watch mode, sweep everything this often anyway (seconds).
    #[arg(long, default_value = "300", value_name = "SECONDS", value_parser = super::seconds, allow_negative_numbers = true)]
    safety_sweep: Duration,
    /// Answer read-only SQL at /api/v2/sql (behind the same auth as the list).
    #[arg(long)]
    enable_sql: bool,
    /// Stop a SQL statement after this many seconds.
    #[arg(long, default_value = "2", value_name = "SECONDS", value_parser = super::seconds, allow_negative_numbers = true)]
    sql_timeout: Duration,
    /// Return at most this many rows per statement (then `"truncated": true`).
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = rows, allow_negative_numbers = true)]
    sql_max_rows: usize,
    /// Stop a SQL statement when SQLite's memory in all would pass this many MiB (its own work
    /// takes a few).
    #[arg(long, default_value_t = 1024, value_name = "MIB", value_parser = mebibytes)]
    sql_max_memory: u64,
}

fn mebibytes(s: &str) -> Result<u64, String> {
    // Past 2^40 MiB (an exbibyte) is as good as no limit, and no more fits SQLite's in bytes.
    let mib = crate::usage::count(s).filter(|n| *n >= 16).ok_or("a number of MiB, 16 or more")?;
    Ok((mib as u64).min(1 << 40))
}

fn rows(s: &str) -> Result<usize, String> {
    Ok(crate::usage::count(s).filter(|n| *n > 0).ok_or("a number of rows, 1 or more")?)
}

/// Raises the soft limit on open files to the hard one, as Go's runtime and nginx do: every
/// connection holds a file, and at the usual soft limit of 1,024 a thousand connections that
/// send a byte and then wait (for the 30 s the server gives a request's head) kept the server
/// from accepting anyone else, or opening a log, for as long as they stayed.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max {
            return;
        }
        let wanted = limit.rlim_max;
        // macOS takes no more than OPEN_MAX as the soft limit, whatever the hard one.
        #[cfg(target_os = "macos")]
        let wanted = wanted.min(10_240);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &libc::rlimit { rlim_cur: wanted, ..limit }) != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot raise the limit on open files");
        }
    }
}

/// Caps glibc's malloc at two arenas, unless `MALLOC_ARENA_MAX` says otherwise. By default it
/// makes up to eight a core, one for each thread that finds the others busy, and keeps each
/// one's freed memory: a server whose bursts of requests run on many threads grew with every
/// burst (here, 10 bursts of 200 lists of 1,000 items each: from 78 to 475 MB, and still
/// growing; with two arenas it stayed near 170 MB).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: sets a parameter of the allocator, before the threads that use it start.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

/// `GPTME_DISABLE_AUTH`, read exactly as gptme-server reads it (any case, nothing trimmed).
fn auth_disabled() -> bool {
    std::env::var("GPTME_DISABLE_AUTH").is_ok_and(|v| ["true", "1", "yes"].contains(&v.to_lowercase().as_str()))
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    raise_open_files_limit();
    limit_malloc_arenas();
    let disabled = auth_disabled();
    let token = a.token.clone().filter(|t| !t.is_empty() && !disabled);
    // Before the runtime's threads start: taking it changes the environment.
    let passed = server::systemd::passed_listener()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Listen first: a taken port is reported at once, not after indexing the archive (and
        // clients that connect meanwhile wait in the backlog). Or systemd listens.
        let listener = match passed {
            Some(passed) => {
                let listener = server::Listener::passed(passed)?;
                tracing::info!("serving on the socket systemd passed ({}), not --addr", listener.local_addr()?);
                listener
            }
            None => match a.addr.strip_prefix("unix:") {
                Some("" | "@") => anyhow::bail!(
                    "--addr {} names no socket (it takes unix:PATH, such as unix:/run/convmeta.sock, or unix:@NAME)",
                    a.addr
                ),
                Some(path) => {
                    let (path, target) = (std::path::PathBuf::from(path), a.target.clone());
                    // Blocking: the logs directory may be the one the database names.
                    tokio::task::spawn_blocking(move || {
                        let file = server::abstract_name(&path).is_none();
                        if let Some(logs) = target.logs_dir().ok().filter(|logs| file && super::inside_logs(&path, logs)) {
                            anyhow::bail!(
                                "the socket unix:{} is inside the logs directory {}, which convmeta never writes: listen outside it (unix:$XDG_RUNTIME_DIR/convmeta.sock, say)",
                                path.display(),
                                logs.display()
                            );
                        }
                        server::Listener::bind_unix(&path).with_context(|| format!("cannot listen on unix:{}", path.display()))
                    })
                    .await??
                }
                None => {
                    let addr: SocketAddr = tokio::net::lookup_host(&a.addr)
                        .await
                        .with_context(|| {
                            format!(
                                "cannot resolve --addr {} (it takes HOST:PORT, such as 127.0.0.1:5702, or unix:PATH)",
                                a.addr
                            )
                        })?
                        .next()
                        .with_context(|| format!("--addr {} resolves to nothing", a.addr))?;
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("cannot listen on {addr}"))?;
                    listener.into()
                }
            },
        };
        let addr = listener.local_addr()?;
        // Auth turned off on purpose is the operator's call, as in gptme-server (a server behind
        // an authenticating proxy); merely having no token is not. A Unix socket's file says who
        // may connect, as the loopback address says no other host.
        let local = addr.tcp().is_none_or(|tcp| tcp.ip().is_loopback());
        if token.is_none() && !disabled && !local {
            anyhow::bail!(
                "refusing to listen on {addr} without authentication: set GPTME_SERVER_TOKEN (or --token), or listen on a loopback address such as 127.0.0.1 (GPTME_DISABLE_AUTH=true turns auth off on any address, for a server guarded otherwise)"
            );
        }
        // No token given, in front of a gptme-server: the token that gptme-server made up, which
        // it shares in a file while it runs, is the one clients hold.
        let token_file = match (&token, &a.upstream) {
            (None, Some(_)) if !disabled => gptme::server_token_file(),
            _ => None,
        };
        let shared_token = match &token_file {
            Some(path) => server::read_token_file(path).await,
            None => None,
        };
        if let (Some(_), Some(path)) = (&shared_token, &token_file) {
            tracing::info!("asking for the token gptme-server made up (from {})", path.display());
        }
        // The token clients hold as serving starts, for the upstream check.
        let start_token = token.clone().or(shared_token);
        // An upstream's URL cannot lead to a Unix socket.
        if let (Some(url), Some(here)) = (&a.upstream, addr.tcp()) {
            if server::leads_here(url, here).await {
                anyhow::bail!(
                    "--upstream {url} is this server's own address ({here}), so every forwarded request would come back here: give gptme-server's address, by default http://127.0.0.1:5700"
                );
            }
        }
        // Asked while the archive is indexed; told before serving.
        let upstream_check = match &a.upstream {
            Some(url) => Some((url.clone(), tokio::spawn(server::check_upstream(url, start_token.clone())?))),
            None => None,
        };
        let started = std::time::Instant::now();
        let (target, watch, safety_sweep) = (a.target.clone(), a.watch, a.safety_sweep);
        let (index, stats, watch) =
            tokio::task::spawn_blocking(move || index_up_to_date(target, watch, safety_sweep)).await??;
        tracing::info!(
            conversations = stats.conversations,
            read = stats.full_scans + stats.appends,
            ms = started.elapsed().as_millis() as u64,
            "index up to date"
        );
        if a.enable_sql {
            crate::store::sql::limit_memory(a.sql_max_memory << 20);
        }
        let sql =
            SqlConfig { enabled: a.enable_sql, timeout: a.sql_timeout, max_rows: a.sql_max_rows, ..SqlConfig::default() };
        let config = Config {
            token,
            token_file,
            upstream: a.upstream.clone(),
            cors_origins: a.cors_origins.clone(),
            allowed_hosts: a.allowed_hosts.clone(),
            sql,
            ..Config::default()
        };
        let state = AppState::new(index, config, watch)?;
        if let Some((url, check)) = upstream_check {
            tell_upstream(&url, check.await?, start_token.is_some());
        }
        let conversations = crate::cli::thousands(stats.conversations as u64);
        server::systemd::notify(&format!("READY=1\nSTATUS=serving {conversations} conversations on {addr}"));
        if let Some(every) = server::systemd::watchdog() {
            tokio::spawn(tell_the_watchdog(every));
        }
        server::serve(listener, state, shutdown()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Opens the index and brings it up to date, before serving (blocking: off the async threads).
fn index_up_to_date(
    target: Target,
    watch: bool,
    safety_sweep: Duration,
) -> anyhow::Result<(Arc<Index>, Arc<Stats>, Option<Watch>)> {
    let index = Arc::new(target.open_maybe_missing()?);
    super::warn_if_index_shared(&index);
    let status = index.status()?;
    if status.last_refresh_at.is_none() {
        // Rows but no finished refresh: a backfill stopped before its end (as `status` says).
        let what = match status.conversations {
            0 => "indexing the archive for the first time",
            _ => "finishing the index a stopped backfill left",
        };
        tracing::info!("{what} (`convmeta backfill` does it with a progress bar)");
    }
    // Watching before the first refresh: a change made during it is marked, not missed.
    let watch = watch.then(|| Watch::start(index.clone(), safety_sweep)).and_then(|started| {
        started
            .inspect_err(|e| tracing::warn!(error = %e, "cannot watch the archive; sweeping on every request instead"))
            .ok()
    });
    // A first index may take minutes: it says how far it has come, and commits as it
    // goes, as a backfill does, so a stop keeps what it read.
    let first = status.last_refresh_at.is_none().then(|| {
        let logged = progress::Logged::default();
        let opts =
            Options { commit_every: Some(Duration::from_millis(500)), progress: Some(&logged), ..Options::default() };
        index.refresh_with(&opts)
    });
    let first = match first {
        Some(Err(e)) if e.is_logs_missing() => None,
        other => other.transpose()?,
    };
    // Through the watch when watching: this is the sweep it asks for once its watches are
    // in place, so the first request need not sweep again.
    let refreshed = match &watch {
        Some(watch) => watch.freshen(&index).map(Option::unwrap_or_default),
        None => index.refresh(),
    };
    let stats = match refreshed {
        Err(e) if e.is_logs_missing() => Default::default(),
        other => other?,
    };
    // What the first index read, rather than the quick sweep after it.
    let stats = first.unwrap_or(stats);
    Ok((index, stats, watch))
}

/// What the start-time check of `--upstream` found, said once, with what to do about it.
fn tell_upstream(url: &str, check: UpstreamCheck, have_token: bool) {
    let fix = "give both servers the same GPTME_SERVER_TOKEN, or set GPTME_DISABLE_AUTH=true for both";
    match check {
        UpstreamCheck::Gptme(version) if GPTME_VERSIONS_CHECKED.contains(&version.as_str()) => {
            tracing::info!("forwarding to gptme-server {version} at {url}")
        }
        UpstreamCheck::Gptme(version) => tracing::warn!(
            "forwarding to gptme-server {version} at {url}; convmeta answers the list as gptme {GPTME_VERSION} does, so what {version} changed in it is not in convmeta's answers"
        ),
        UpstreamCheck::Refuses { version } if have_token => tracing::warn!(
            "gptme-server {version} at {url} refuses convmeta's token, so forwarded requests will be refused (401): {fix}"
        ),
        UpstreamCheck::Refuses { version } => tracing::warn!(
            "gptme-server {version} at {url} asks for a token and convmeta has none, so forwarded requests will be refused (401): {fix}"
        ),
        UpstreamCheck::Unreachable(e) => {
            tracing::warn!("nothing answers at --upstream {url} yet ({e}); forwarded requests get a 502 until it does")
        }
        UpstreamCheck::NotGptme => tracing::warn!("--upstream {url} does not answer /api/v2 as gptme-server does"),
    }
}

/// Tells systemd's watchdog, twice in each of its intervals, that the server lives: its async
/// threads run this, and its blocking threads, where every refresh and query runs, take a task
/// in turn. Stuck, it says nothing, and systemd restarts it.
async fn tell_the_watchdog(every: Duration) {
    let mut ticks = tokio::time::interval(every / 2);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if tokio::task::spawn_blocking(|| ()).await.is_ok() {
            server::systemd::notify("WATCHDOG=1");
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    server::systemd::notify("STOPPING=1");
    tracing::info!("shutting down: finishing requests in flight");
}
