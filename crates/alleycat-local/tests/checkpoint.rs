//! The embedded database checkpoints on a thread of its own: writes never copy the WAL back
//! themselves, yet the database file receives what was written, and the WAL is gone once the
//! database is closed.

use std::time::{Duration, Instant};

use alleycat_local::db::Db;

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn the_wal_is_copied_back_without_a_writer_doing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let wal = dir.path().join("c.db-wal");
    let db = Db::open(&path).unwrap();
    db.call(|conn| conn.execute_batch("CREATE TABLE t (v BLOB NOT NULL)"))
        .unwrap();
    let before = file_len(&path);
    // 4 MB in 64 commits: well past SQLite's automatic threshold of 1,000 pages, which this
    // connection has switched off.
    for _ in 0..64 {
        db.transaction(|tx| {
            for _ in 0..16 {
                tx.execute("INSERT INTO t (v) VALUES (zeroblob(4096))", [])?;
            }
            Ok(())
        })
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while file_len(&path) < before + 4 * 1024 * 1024 {
        assert!(
            Instant::now() < deadline,
            "the database file stayed at {} bytes (WAL {} bytes): no checkpoint ran",
            file_len(&path),
            file_len(&wal)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rows: i64 = db
        .read(|conn| conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0)))
        .unwrap();
    assert_eq!(rows, 1024);
    drop(db);
    assert_eq!(file_len(&wal), 0, "closing leaves no WAL behind");
}
