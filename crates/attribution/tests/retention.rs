//! The server's own retention run: sessions that ended before the cut-off leave the store and
//! the index, and the hook (serve records it in the ledger) hears counts and range only.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use mamori_attribution::server::{Clients, RadiusServer, Retention, Swept};
use mamori_attribution::{Attribution, Attributor, Settings, read, store_path};

const OLD: &str = "Wed Jan  1 00:00:00 2025
\tAcct-Status-Type = Start
\tUser-Name = \"carol\"
\tAcct-Session-Id = \"old-1\"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 198.51.100.77
\tEvent-Timestamp = \"Jan  1 2025 00:00:00 UTC\"

Wed Jan  1 01:00:00 2025
\tAcct-Status-Type = Stop
\tUser-Name = \"carol\"
\tAcct-Session-Id = \"old-1\"
\tNAS-IP-Address = 192.0.2.1
\tFramed-IP-Address = 198.51.100.77
\tEvent-Timestamp = \"Jan  1 2025 01:00:00 UTC\"
\tAcct-Session-Time = 3600

";

#[test]
fn the_server_sweeps_old_sessions_and_reports_counts_to_its_hook() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    {
        let mut a = Attributor::open_for_writes(&path, Settings::default()).unwrap();
        assert_eq!(a.import_detail(OLD.as_bytes()).unwrap().written, 1);
    }
    let attributor = Attributor::open(&path, Settings::default()).unwrap();
    let mut server =
        RadiusServer::bind("127.0.0.1:0".parse().unwrap(), Clients::from_config(&[]).unwrap(), attributor).unwrap();
    let index = server.index();
    let at: Timestamp = "2025-01-01T00:30:00Z".parse().unwrap();
    let who = || read(&index).lookup("198.51.100.77".parse().unwrap(), None, at);
    assert!(matches!(who(), Attribution::Unique(_)));

    let seen: Arc<Mutex<Vec<Swept>>> = Arc::default();
    let s = seen.clone();
    server.on_swept(Box::new(move |w| s.lock().unwrap().push(*w)));
    let stop = Arc::new(AtomicBool::new(false));
    let retention = Retention { keep: SignedDuration::from_hours(24 * 30), every: Duration::from_secs(3600) };
    let thread = server.spawn(stop.clone(), Some(retention)).unwrap();
    let started = Instant::now();
    while seen.lock().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "no retention run");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thread.join().unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let end = 1_735_693_200; // 2025-01-01T01:00:00Z
    assert_eq!((seen[0].deleted, seen[0].range), (1, Some((end, end))));
    assert!(matches!(who(), Attribution::Unknown));
    let db = mamori_attribution::db::SessionDb::open_read_only(&path).unwrap();
    assert_eq!(db.count().unwrap(), 0);
}
