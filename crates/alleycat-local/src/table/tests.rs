//! The embedded table against its contract: the ports' semantics, the DynamoDB images its
//! change log carries, and what survives reopening the file.

use std::sync::Arc;
use std::time::Duration;

use alleycat_domain::{
    LeaderboardEntry, MaxMerge, Output, RaceKey, RacerFinal, SecondSeries, Standings,
};
use alleycat_ports::schema::StandingsItem;
use alleycat_ports::{
    BestsKey, Finals, FinalsRepair, MergeStore, PortError, Queries, RemoveStore, RetryPolicy,
    StoredStandings, TraceKey, merge_into,
};
use serde_dynamo::Item;
use serde_json::json;

use super::{Change, LocalTable};
use crate::db::Db;
use crate::now_ms;

fn open(path: &std::path::Path) -> LocalTable {
    LocalTable::open(Arc::new(Db::open(path).unwrap())).unwrap()
}

fn table() -> (tempfile::TempDir, LocalTable) {
    let dir = tempfile::tempdir().unwrap();
    let table = open(&dir.path().join("table.db"));
    (dir, table)
}

fn out(ten_thousandths: u32) -> Output {
    Output::from_ten_thousandths(ten_thousandths)
}

fn race(class_id: u8, race_id: u64) -> RaceKey {
    RaceKey { class_id, race_id }
}

fn standings(results: &[(u32, u32)]) -> Standings {
    results.iter().map(|&(racer, o)| (racer, out(o))).collect()
}

fn entry(racer_id: u32, name: &str, best: u32, race_id: u64) -> LeaderboardEntry {
    LeaderboardEntry {
        racer_id,
        name: name.to_owned(),
        best: out(best),
        race_id,
        updated_at: race_id * 1_000,
    }
}

fn racer_final(race: RaceKey, racer_id: u32, output: u32) -> RacerFinal {
    RacerFinal {
        class_id: race.class_id,
        race_id: race.race_id,
        racer_id,
        name: format!("racer {racer_id}"),
        output: out(output),
        finished_at: 1_700_000_000_000,
    }
}

/// An image as DynamoDB JSON, without `updatedAt` when the clock set it.
fn image_json(image: Option<&Item>, drop_updated_at: bool) -> serde_json::Value {
    let mut image = image.expect("an image").clone();
    if drop_updated_at {
        image.remove("updatedAt").expect("updatedAt is set");
    }
    serde_json::to_value(&image).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_merges_into_one_item_lose_no_update() {
    let (_dir, table) = table();
    let key = race(3, 5_400_172);
    let mut rng = fastrand::Rng::with_seed(7);
    let deltas: Vec<Vec<Standings>> = (0..8)
        .map(|_| {
            (0..25)
                .map(|_| {
                    (0..5)
                        .map(|_| (rng.u32(1..40), out(rng.u32(1..3_000_000))))
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut expected = Standings::new();
    for delta in deltas.iter().flatten() {
        expected.merge(delta);
    }
    let policy = RetryPolicy {
        max_attempts: 10_000,
        base_delay: Duration::from_micros(200),
        max_delay: Duration::from_millis(2),
    };
    let tasks: Vec<_> = deltas
        .into_iter()
        .map(|task_deltas| {
            let table = table.clone();
            tokio::spawn(async move {
                let mut writes = 0;
                for delta in &task_deltas {
                    let outcome = merge_into(&table, &key, delta, &policy).await.unwrap();
                    writes += u64::from(outcome.written);
                }
                writes
            })
        })
        .collect();
    let mut writes = 0;
    for task in tasks {
        writes += task.await.unwrap();
    }

    let (stored, version) = MergeStore::<RaceKey, Standings>::load(&table, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, expected);
    assert_eq!(version, writes, "one version per successful write");
    let changes = table.changes_after(0, 10_000).unwrap();
    assert_eq!(changes.len() as u64, writes, "one change per write");
    let last: StandingsItem =
        serde_dynamo::from_item(changes.last().unwrap().new_image.clone().unwrap()).unwrap();
    assert_eq!(last.results, expected);
}

#[tokio::test]
async fn a_stale_version_conflicts_and_writes_nothing() {
    let (_dir, table) = table();
    let key = race(1, 10);
    let (first, second) = (standings(&[(1, 100)]), standings(&[(1, 200)]));
    table.store(&key, &first, None).await.unwrap();
    assert_eq!(
        table.store(&key, &second, None).await,
        Err(PortError::Conflict),
        "an insert finds the item there"
    );
    table.store(&key, &second, Some(&1)).await.unwrap();
    assert_eq!(
        table.store(&key, &first, Some(&1)).await,
        Err(PortError::Conflict),
        "version 1 is stale"
    );
    assert_eq!(
        MergeStore::<RaceKey, Standings>::load(&table, &key)
            .await
            .unwrap(),
        Some((second, 2))
    );
    assert_eq!(table.changes_after(0, 10).unwrap().len(), 2);
    let other = race(2, 10);
    assert_eq!(
        table.store(&other, &first, Some(&1)).await,
        Err(PortError::Conflict),
        "an update finds no item"
    );
    assert_eq!(table.standings(other).await.unwrap(), None);
}

#[tokio::test]
async fn records_only_improve_and_rank_best_first() {
    let (_dir, table) = table();
    assert!(
        table
            .offer_record(3, &entry(1, "ann", 1_500_000, 20))
            .await
            .unwrap()
    );
    assert!(
        !table
            .offer_record(3, &entry(1, "ann", 1_400_000, 21))
            .await
            .unwrap()
    );
    assert!(
        !table
            .offer_record(3, &entry(1, "ann", 1_500_000, 22))
            .await
            .unwrap(),
        "an equal best of a later race is no record"
    );
    assert!(
        table
            .offer_record(3, &entry(1, "ann", 1_500_000, 19))
            .await
            .unwrap(),
        "an equal best of an earlier race keeps the record"
    );
    assert!(
        table
            .offer_record(3, &entry(1, "ann", 1_600_000, 30))
            .await
            .unwrap()
    );
    // Three rows tied at 90, the record holder (the earliest race) inserted in the middle:
    // whichever way the index orders ties, the second place is decided by the record order.
    for (racer, name, race_id) in [(2, "bob", 7), (3, "cat", 3), (6, "fay", 9)] {
        let row = entry(racer, name, 900_000, race_id);
        assert!(table.offer_record(3, &row).await.unwrap());
    }
    table
        .offer_record(3, &entry(4, "dan", 100_000, 1))
        .await
        .unwrap();
    table
        .offer_record(4, &entry(5, "eve", 9_900_000, 1))
        .await
        .unwrap();

    let ids = |rows: Vec<LeaderboardEntry>| rows.iter().map(|r| r.racer_id).collect::<Vec<_>>();
    assert_eq!(
        ids(table.leaderboard(3, 10).await.unwrap()),
        [1, 3, 2, 6, 4]
    );
    assert_eq!(ids(table.leaderboard(3, 2).await.unwrap()), [1, 3]);
    assert_eq!(ids(table.leaderboard(3, 3).await.unwrap()), [1, 3, 2]);
    assert_eq!(
        ids(table.leaderboard(3, 0).await.unwrap()),
        Vec::<u32>::new()
    );
    assert_eq!(ids(table.leaderboard(4, 10).await.unwrap()), [5]);
    assert_eq!(
        table.leaderboard(3, 1).await.unwrap(),
        [entry(1, "ann", 1_600_000, 30)]
    );

    let changes = table.changes_after(0, 100).unwrap();
    assert_eq!(changes.len(), 8, "refused offers write no change");
    let record = &changes[2];
    assert_eq!(record.event_name, Change::MODIFY);
    assert_eq!(
        image_json(record.new_image.as_ref(), false),
        json!({
            "pk": {"S": "class#3"},
            "sk": {"S": "racer#1"},
            "racerId": {"N": "1"},
            "name": {"S": "ann"},
            "best": {"N": "160"},
            "raceId": {"N": "30"},
            "updatedAt": {"N": "30000"}
        })
    );
    assert_eq!(record.old_image, changes[1].new_image);
}

#[tokio::test]
async fn latest_races_are_newest_first_per_class_and_limited() {
    let (_dir, table) = table();
    for key in [race(1, 9), race(1, 12), race(2, 20), race(1, 5)] {
        let results = standings(&[(1, u32::try_from(key.race_id).unwrap())]);
        table.store(&key, &results, None).await.unwrap();
    }
    let races = |rows: Vec<StoredStandings>| rows.iter().map(|r| r.race).collect::<Vec<_>>();
    assert_eq!(
        races(table.latest_races(1, 2).await.unwrap()),
        [race(1, 12), race(1, 9)],
        "race ids sort as numbers"
    );
    assert_eq!(
        races(table.latest_races(1, 10).await.unwrap()),
        [race(1, 12), race(1, 9), race(1, 5)]
    );
    assert_eq!(
        races(table.latest_races(2, 10).await.unwrap()),
        [race(2, 20)]
    );
    assert!(table.latest_races(3, 10).await.unwrap().is_empty());
    assert!(table.latest_races(1, 0).await.unwrap().is_empty());

    let latest = &table.latest_races(1, 1).await.unwrap()[0];
    assert_eq!(latest.standings, standings(&[(1, 12)]));
    assert_eq!(
        Some(latest),
        table.standings(race(1, 12)).await.unwrap().as_ref()
    );
    assert!(
        latest.updated_at > 1_700_000_000_000,
        "stamped with the clock"
    );
}

#[tokio::test]
async fn finals_of_a_race_in_racer_order() {
    let (_dir, table) = table();
    let here = race(3, 77);
    table
        .store(&here, &standings(&[(9, 1)]), None)
        .await
        .unwrap();
    for racer in [10, 9, 2] {
        table
            .put_final(&racer_final(here, racer, 1_000 + racer))
            .await
            .unwrap();
    }
    table
        .put_final(&racer_final(race(4, 77), 5, 1))
        .await
        .unwrap();
    let mut renamed = racer_final(here, 9, 1_009);
    renamed.name = "nine".to_owned();
    table.put_final(&renamed).await.unwrap();

    let finals = table.finals(here).await.unwrap();
    assert_eq!(
        finals.iter().map(|f| f.racer_id).collect::<Vec<_>>(),
        [2, 9, 10]
    );
    assert_eq!(finals[1], renamed, "a final put again overwrites");
    assert!(table.finals(race(3, 78)).await.unwrap().is_empty());

    let last = table.changes_after(0, 100).unwrap().pop().unwrap();
    assert_eq!(last.event_name, Change::MODIFY);
    assert_eq!(
        image_json(last.new_image.as_ref(), false),
        json!({
            "pk": {"S": "race#3#77"},
            "sk": {"S": "racer#9"},
            "classId": {"N": "3"},
            "raceId": {"N": "77"},
            "racerId": {"N": "9"},
            "name": {"S": "nine"},
            "output": {"N": "0.1009"},
            "finishedAt": {"N": "1700000000000"}
        })
    );
    assert_eq!(
        image_json(last.old_image.as_ref(), false)["name"],
        json!({"S": "racer 9"})
    );
}

#[tokio::test]
async fn bests_and_traces_round_trip_exactly() {
    let (_dir, table) = table();
    let bests_key = BestsKey {
        racer_id: 8,
        class_id: 3,
    };
    let trace_key = TraceKey {
        racer_id: 8,
        race: race(3, 5_400_172),
    };
    let bests: SecondSeries = [(1, out(u32::MAX)), (3, out(1_517_880)), (300, out(1))]
        .into_iter()
        .collect();
    let trace: SecondSeries = [(2, out(5))].into_iter().collect();
    assert_eq!(table.bests(bests_key).await.unwrap(), None);
    table.store(&bests_key, &bests, None).await.unwrap();
    table.store(&trace_key, &trace, None).await.unwrap();

    assert_eq!(table.bests(bests_key).await.unwrap(), Some(bests.clone()));
    assert_eq!(table.trace(trace_key).await.unwrap(), Some(trace.clone()));
    assert_eq!(
        table
            .bests(BestsKey {
                class_id: 4,
                ..bests_key
            })
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        MergeStore::<BestsKey, SecondSeries>::load(&table, &bests_key)
            .await
            .unwrap(),
        Some((bests, 1))
    );

    let changes = table.changes_after(0, 10).unwrap();
    assert_eq!(
        image_json(changes[1].new_image.as_ref(), true),
        json!({
            "pk": {"S": "racer#8"},
            "sk": {"S": "race#3#5400172"},
            "classId": {"N": "3"},
            "raceId": {"N": "5400172"},
            "racerId": {"N": "8"},
            "seconds": {"L": [{"NULL": true}, {"N": "0.0005"}]},
            "version": {"N": "1"}
        })
    );
    let seconds = &image_json(changes[0].new_image.as_ref(), true)["seconds"]["L"];
    assert_eq!(seconds[0], json!({"N": "429496.7295"}));
    assert_eq!(seconds[2], json!({"N": "151.788"}));
    assert_eq!(seconds[299], json!({"N": "0.0001"}));
}

#[tokio::test]
async fn changes_carry_old_and_new_images_like_a_dynamodb_stream() {
    let (_dir, table) = table();
    let key = race(3, 5_400_172);
    let changed = table.changed();
    let notified = changed.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let before = now_ms();
    let first = standings(&[(8, 1_517_880), (12, 1_402_500)]);
    table.store(&key, &first, None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), notified)
        .await
        .expect("a write wakes the change log's consumers");
    let mut second = first.clone();
    second.merge(&standings(&[(8, 1_531_204), (31, 985_000)]));
    table.store(&key, &second, Some(&1)).await.unwrap();
    let after = now_ms();

    let changes = table.changes_after(0, 10).unwrap();
    let [insert, modify] = changes.as_slice() else {
        panic!("two changes: {changes:?}")
    };
    assert_eq!((insert.sequence, modify.sequence), (1, 2));
    assert_eq!((insert.event_name, modify.event_name), ("INSERT", "MODIFY"));
    let keys = json!({"pk": {"S": "race#3#5400172"}, "sk": {"S": "standings"}});
    assert_eq!(serde_json::to_value(&insert.keys).unwrap(), keys);
    assert_eq!(serde_json::to_value(&modify.keys).unwrap(), keys);
    assert_eq!(insert.old_image, None);
    assert_eq!(modify.old_image, insert.new_image);
    assert_eq!(
        image_json(modify.new_image.as_ref(), true),
        json!({
            "pk": {"S": "race#3#5400172"},
            "sk": {"S": "standings"},
            "classId": {"N": "3"},
            "raceId": {"N": "5400172"},
            "results": {"M": {
                "8": {"N": "153.1204"},
                "12": {"N": "140.25"},
                "31": {"N": "98.5"}
            }},
            "version": {"N": "2"},
            "gsi1pk": {"S": "class#3#races"},
            "gsi1sk": {"N": "5400172"}
        })
    );
    for change in &changes {
        assert!((before..=after).contains(&change.created_ms));
        assert!(change.size_bytes > 200, "{}", change.size_bytes);
    }
    assert!(modify.size_bytes > insert.size_bytes, "two images");

    let image: StandingsItem = serde_dynamo::from_item(modify.new_image.clone().unwrap()).unwrap();
    assert_eq!((image.class_id, image.race_id), (3, 5_400_172));
    assert_eq!(image.results, second);
    let stored = table.standings(key).await.unwrap().unwrap();
    assert_eq!(image.updated_at, stored.updated_at);

    assert_eq!(
        table.changes_after(1, 10).unwrap(),
        std::slice::from_ref(modify)
    );
    assert_eq!(
        table.changes_after(0, 1).unwrap(),
        std::slice::from_ref(insert)
    );
    assert!(table.changes_after(2, 10).unwrap().is_empty());
    assert_eq!(table.last_change(), Some(2));
}

#[tokio::test]
async fn trimming_drops_old_changes_and_never_reuses_a_sequence() {
    let (_dir, table) = table();
    assert_eq!(table.last_change(), None);
    let key = race(1, 1);
    table
        .store(&key, &standings(&[(1, 1)]), None)
        .await
        .unwrap();
    table
        .store(&key, &standings(&[(1, 2)]), Some(&1))
        .await
        .unwrap();
    assert_eq!(table.trim_changes(0).unwrap(), 0);
    assert_eq!(table.trim_changes(now_ms() + 1).unwrap(), 2);
    assert!(table.changes_after(0, 10).unwrap().is_empty());
    assert_eq!(table.last_change(), Some(2), "trimming keeps the numbering");
    table
        .store(&key, &standings(&[(1, 3)]), Some(&2))
        .await
        .unwrap();
    let changes = table.changes_after(0, 10).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].sequence, 3);
}

#[tokio::test]
async fn state_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.db");
    let key = race(2, 40);
    let results = standings(&[(1, 1_234_567), (2, 7)]);
    {
        let table = open(&path);
        table.store(&key, &results, None).await.unwrap();
        table
            .offer_record(2, &entry(1, "ann", 1_234_567, 40))
            .await
            .unwrap();
        table
            .put_final(&racer_final(key, 1, 1_234_567))
            .await
            .unwrap();
    }
    let table = open(&path);
    assert_eq!(table.last_change(), Some(3));
    assert_eq!(
        MergeStore::<RaceKey, Standings>::load(&table, &key)
            .await
            .unwrap(),
        Some((results.clone(), 1))
    );
    assert_eq!(
        table.latest_races(2, 5).await.unwrap()[0].standings,
        results
    );
    assert_eq!(
        table.leaderboard(2, 5).await.unwrap(),
        [entry(1, "ann", 1_234_567, 40)]
    );
    assert_eq!(
        table.finals(key).await.unwrap(),
        [racer_final(key, 1, 1_234_567)]
    );
    assert_eq!(table.changes_after(0, 10).unwrap().len(), 3);
    table.store(&key, &results, Some(&1)).await.unwrap();
    assert_eq!(table.changes_after(3, 10).unwrap()[0].sequence, 4);
}

#[tokio::test]
async fn removals_hold_only_at_the_version_read_and_log_a_remove() -> Result<(), PortError> {
    let (_dir, table) = table();
    let race = RaceKey {
        class_id: 1,
        race_id: 4,
    };
    let standings: Standings = [(3, Output::from_ten_thousandths(9))].into_iter().collect();
    table.store(&race, &standings, None).await?;
    assert_eq!(table.remove(&race, &2).await, Err(PortError::Conflict));
    table.remove(&race, &1).await?;
    assert_eq!(table.standings(race).await?, None);
    let last = table.changes_after(0, 10).unwrap().pop().unwrap();
    assert_eq!(last.event_name, Change::REMOVE);
    assert!(last.old_image.is_some() && last.new_image.is_none());
    Ok(())
}

#[tokio::test]
async fn records_and_finals_change_only_as_read() -> Result<(), PortError> {
    let (_dir, table) = table();
    let forged = LeaderboardEntry {
        racer_id: 7,
        name: "Seven".into(),
        best: Output::from_ten_thousandths(4_702_500),
        race_id: 2,
        updated_at: 3,
    };
    assert!(table.offer_record(1, &forged).await?);
    let fair = LeaderboardEntry {
        best: Output::from_ten_thousandths(10),
        ..forged.clone()
    };
    assert_eq!(
        table.replace_record(1, &fair, None).await,
        Err(PortError::Conflict)
    );
    table.replace_record(1, &fair, Some(&forged)).await?;
    assert_eq!(table.leaderboard(1, 10).await?, vec![fair.clone()]);
    assert_eq!(
        table.remove_record(1, &forged).await,
        Err(PortError::Conflict)
    );
    table.remove_record(1, &fair).await?;
    assert!(table.leaderboard(1, 10).await?.is_empty());

    let result = RacerFinal {
        class_id: 1,
        race_id: 2,
        racer_id: 7,
        name: "Seven".into(),
        output: Output::from_ten_thousandths(4_702_500),
        finished_at: 3,
    };
    table.put_final(&result).await?;
    let other = RacerFinal {
        finished_at: 4,
        ..result.clone()
    };
    assert_eq!(table.remove_final(&other).await, Err(PortError::Conflict));
    table.remove_final(&result).await?;
    let race = RaceKey {
        class_id: 1,
        race_id: 2,
    };
    assert!(table.finals(race).await?.is_empty());
    Ok(())
}
