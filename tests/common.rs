//! Helpers shared by the integration tests and the benchmarks (which include this file with
//! `#[path]`): a seeded generator and an in-process server.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

#[path = "../src/test_rng.rs"]
mod test_rng;
pub use test_rng::Rng;

/// When a server in watch mode starts serving.
enum Setup {
    AsServe,
    Settled,
    Unsettled,
}

/// A convmeta server running in-process on 127.0.0.1, port 0; stopped when dropped.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub index: std::sync::Arc<convmeta::Index>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Told when `serve` has returned.
    served: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Server {
    /// In watch mode as `serve --watch` starts: serving once the watches are set up or 0.2 s
    /// have passed, whichever is first.
    pub fn start(logs: &Path, db: &Path, config: convmeta::server::Config, watch: bool) -> Server {
        Self::start_with(logs, db, config, watch.then_some(Setup::AsServe))
    }

    /// In watch mode, once every watch is in place: what the benches time is watch mode, not
    /// the sweeps that answer while a large archive's watches are set up.
    #[allow(dead_code)] // the benches' (this file is shared with them)
    pub fn start_watching(logs: &Path, db: &Path, config: convmeta::server::Config) -> Server {
        Self::start_with(logs, db, config, Some(Setup::Settled))
    }

    /// In watch mode, serving at once, while the watches are set up.
    #[allow(dead_code)] // the tests'
    pub fn start_setting_up(logs: &Path, db: &Path, config: convmeta::server::Config) -> Server {
        Self::start_with(logs, db, config, Some(Setup::Unsettled))
    }

    fn start_with(logs: &Path, db: &Path, config: convmeta::server::Config, watch: Option<Setup>) -> Server {
        use convmeta::watch::Watch;
        let index = std::sync::Arc::new(convmeta::Index::open(logs, db).unwrap());
        let safety_sweep = Duration::from_secs(3600);
        let watch = watch.map(|setup| match setup {
            Setup::AsServe => Watch::start(index.clone(), safety_sweep).unwrap(),
            Setup::Unsettled => Watch::start_waiting(index.clone(), safety_sweep, Duration::ZERO).unwrap(),
            Setup::Settled => {
                let watch = Watch::start(index.clone(), safety_sweep).unwrap();
                assert!(watch.wait_watching(Duration::from_secs(600)), "the watches were never set up");
                watch
            }
        });
        // As `serve` starts: the first sweep through the watch, when watching.
        match &watch {
            Some(watch) => drop(watch.freshen(&index).unwrap()),
            None => drop(index.refresh().unwrap()),
        }
        let state = convmeta::server::AppState::new(index.clone(), config, watch).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let (returned, served) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                convmeta::server::serve(listener, state, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
                let _ = returned.send(());
            });
        });
        let addr = rx.recv().unwrap();
        Server { addr, index, stop: Some(stop), thread: Some(thread), served: served.into() }
    }

    /// Asks the server to stop; whether `serve` returned within `limit`. If it did not, the
    /// server is left running (detached), so a failing test does not hang.
    pub fn stop_within(&mut self, limit: Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let returned = self.served.lock().unwrap().recv_timeout(limit).is_ok();
        if !returned {
            self.thread.take();
        }
        returned
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        client().get(self.url(path)).send().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}
