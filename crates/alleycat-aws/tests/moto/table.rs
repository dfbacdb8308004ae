//! `DynamoTable` against moto: conditional writes, concurrent merges, the leaderboard's "only if
//! greater", and every query.

use alleycat_aws::DynamoTable;
use alleycat_domain::{
    LeaderboardEntry, MaxMerge, Output, RaceKey, RacerFinal, SecondSeries, Standings,
};
use alleycat_ports::memory::MemoryTable;
use alleycat_ports::{
    BestsKey, Finals, MergeStore, PortError, Queries, RetryPolicy, TraceKey, merge_into,
};

use crate::support;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn out(units: u32) -> Output {
    Output::from_ten_thousandths(units)
}

fn race(class_id: u8, race_id: u64) -> RaceKey {
    RaceKey { class_id, race_id }
}

/// Enough attempts for 16 writers on one item: each round of conflicts lets at least one through.
fn contended() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 200,
        ..RetryPolicy::default()
    }
}

/// A seeded generator, its seed printed so a failure can be replayed.
fn rng() -> fastrand::Rng {
    let seed = std::env::var("ALLEYCAT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("ALLEYCAT_TEST_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

#[tokio::test]
async fn create_if_absent_then_only_from_the_version_read() -> TestResult {
    let table = support::table().await;
    let key = race(1, 100);
    let first: Standings = [(1, out(1_517_880))].into_iter().collect();
    let second: Standings = [(1, out(1_517_880)), (2, out(5))].into_iter().collect();

    assert_eq!(
        MergeStore::<RaceKey, Standings>::load(&table, &key).await?,
        None
    );
    table.store(&key, &first, None).await?;
    assert_eq!(
        table.store(&key, &second, None).await,
        Err(PortError::Conflict),
        "a second create must not overwrite"
    );
    assert_eq!(table.load(&key).await?, Some((first.clone(), 1)));

    table.store(&key, &second, Some(&1)).await?;
    assert_eq!(
        table.store(&key, &first, Some(&1)).await,
        Err(PortError::Conflict),
        "a write from a stale version must fail"
    );
    assert_eq!(
        table.store(&key, &first, Some(&7)).await,
        Err(PortError::Conflict)
    );
    assert_eq!(table.load(&key).await?, Some((second, 2)));
    Ok(())
}

#[tokio::test]
async fn bests_and_traces_use_the_same_versioned_writes() -> TestResult {
    let table = support::table().await;
    let bests = BestsKey {
        racer_id: 7,
        class_id: 2,
    };
    let trace = TraceKey {
        racer_id: 7,
        race: race(2, 9),
    };
    let series: SecondSeries = [(1, out(10)), (3, out(30))].into_iter().collect();
    table.store(&bests, &series, None).await?;
    assert_eq!(
        table.store(&bests, &series, None).await,
        Err(PortError::Conflict)
    );
    table.store(&trace, &series, None).await?;
    assert_eq!(
        table.store(&trace, &series, Some(&2)).await,
        Err(PortError::Conflict)
    );
    table.store(&trace, &series, Some(&1)).await?;
    assert_eq!(
        MergeStore::<BestsKey, SecondSeries>::load(&table, &bests).await?,
        Some((series.clone(), 1))
    );
    assert_eq!(
        MergeStore::<TraceKey, SecondSeries>::load(&table, &trace).await?,
        Some((series, 2))
    );
    Ok(())
}

/// Runs `merge_into` of every delta concurrently on one key; returns how many merges wrote.
async fn merge_concurrently<K, V>(table: &DynamoTable, key: K, deltas: Vec<V>) -> u64
where
    K: Copy + Send + Sync + 'static,
    V: MaxMerge + Clone + Send + Sync + 'static,
    DynamoTable: MergeStore<K, V>,
{
    let tasks: Vec<_> = deltas
        .into_iter()
        .map(|delta| {
            let table = table.clone();
            tokio::spawn(async move { merge_into(&table, &key, &delta, &contended()).await })
        })
        .collect();
    let mut writes = 0;
    for task in tasks {
        let outcome = task.await.expect("task").expect("merge");
        writes += u64::from(outcome.written);
    }
    writes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_writers_lose_no_update() -> TestResult {
    let table = support::table().await;
    let key = race(4, 5_712_345);
    let mut rng = rng();
    let deltas: Vec<Standings> = (0..16)
        .map(|_| {
            (0..rng.usize(1..=20))
                .map(|_| (rng.u32(1..=40), out(rng.u32(0..3_000_000))))
                .collect()
        })
        .collect();
    let mut oracle = Standings::new();
    for delta in &deltas {
        oracle.merge(delta);
    }

    let writes = merge_concurrently(&table, key, deltas).await;

    let (stored, version) = table.load(&key).await?.expect("standings exist");
    assert_eq!(stored, oracle);
    assert_eq!(
        version, writes,
        "every write went through the version check (one version per write)"
    );
    let queried = table.standings(key).await?.expect("standings exist");
    assert_eq!(queried.standings, oracle);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_bests_writers_lose_no_update() -> TestResult {
    let table = support::table().await;
    let key = BestsKey {
        racer_id: 31,
        class_id: 5,
    };
    let mut rng = rng();
    let deltas: Vec<SecondSeries> = (0..16)
        .map(|_| {
            (0..rng.usize(1..=30))
                .map(|_| (rng.u16(1..=60), out(rng.u32(0..3_000_000))))
                .collect()
        })
        .collect();
    let mut oracle = SecondSeries::new();
    for delta in &deltas {
        oracle.merge(delta);
    }

    let writes = merge_concurrently(&table, key, deltas).await;

    let (stored, version) = MergeStore::<BestsKey, SecondSeries>::load(&table, &key)
        .await?
        .expect("bests exist");
    assert_eq!(stored, oracle);
    assert_eq!(version, writes);
    assert_eq!(table.bests(key).await?, Some(oracle));
    Ok(())
}

fn entry(racer_id: u32, name: &str, best: u32, race_id: u64, updated_at: u64) -> LeaderboardEntry {
    LeaderboardEntry {
        racer_id,
        name: name.to_owned(),
        best: out(best),
        race_id,
        updated_at,
    }
}

#[tokio::test]
async fn a_record_is_written_only_if_it_beats_the_stored_row() -> TestResult {
    let table = support::table().await;
    let class = 3;
    // (offer, expected decision); each decision is also checked against `beats`.
    let offers = [
        (entry(9, "mia", 1_500_000, 50, 5_000), true), // no row yet
        (entry(9, "mia", 1_400_000, 40, 4_000), false), // lower best
        (entry(9, "mia", 1_500_000, 50, 5_000), false), // the same row again (a replay)
        (entry(9, "mia", 1_500_000, 51, 4_000), false), // tie, later race
        (entry(9, "mia", 1_500_000, 49, 9_000), true), // tie, earlier race keeps the record
        (entry(9, "mia", 1_500_000, 49, 9_500), false), // tie, same race, later final
        (entry(9, "mia", 1_500_000, 49, 8_000), true), // tie, same race, earlier final
        (entry(9, "zoe", 1_500_000, 49, 8_000), false), // tie on all but a greater name
        (entry(9, "ann", 1_500_000, 49, 8_000), true), // tie on all but a smaller name
        (entry(9, "bob", 1_500_001, 70, 9_999), true), // higher best, whatever else
    ];
    let mut current: Option<LeaderboardEntry> = None;
    for (offer, expected) in offers {
        assert_eq!(
            offer.beats(current.as_ref()),
            expected,
            "oracle for {offer:?}"
        );
        assert_eq!(
            table.offer_record(class, &offer).await?,
            expected,
            "offer {offer:?} over {current:?}"
        );
        if expected {
            current = Some(offer);
        }
    }
    assert_eq!(
        table.leaderboard(class, 10).await?,
        vec![current.expect("a record")]
    );
    Ok(())
}

/// Applies the same writes to moto and to the in-memory table the handlers are tested with.
struct Both {
    aws: DynamoTable,
    memory: MemoryTable,
}

impl Both {
    async fn standings(&self, key: RaceKey, standings: &Standings) -> TestResult {
        merge_into(&self.aws, &key, standings, &RetryPolicy::immediate(3)).await?;
        merge_into(&self.memory, &key, standings, &RetryPolicy::immediate(3)).await?;
        Ok(())
    }

    async fn offer(&self, class_id: u8, entry: &LeaderboardEntry) -> TestResult {
        assert_eq!(
            self.aws.offer_record(class_id, entry).await?,
            self.memory.offer_record(class_id, entry).await?
        );
        Ok(())
    }

    async fn put_final(&self, result: &RacerFinal) -> TestResult {
        self.aws.put_final(result).await?;
        self.memory.put_final(result).await?;
        Ok(())
    }
}

#[tokio::test]
async fn latest_races_are_newest_first_within_the_limit() -> TestResult {
    let both = Both {
        aws: support::table().await,
        memory: MemoryTable::new(),
    };
    for race_id in [5, 3, 9, 1, 10_000_000_000] {
        let standings: Standings = [(1, out(u32::try_from(race_id % 1000)? + 1))]
            .into_iter()
            .collect();
        both.standings(race(2, race_id), &standings).await?;
    }
    // Another class's races must not show up.
    both.standings(race(3, 11), &[(1, out(7))].into_iter().collect())
        .await?;

    let ids = |races: &[alleycat_ports::StoredStandings]| {
        races.iter().map(|r| r.race.race_id).collect::<Vec<_>>()
    };
    let latest = both.aws.latest_races(2, 3).await?;
    assert_eq!(ids(&latest), vec![10_000_000_000, 9, 5]);
    assert!(
        latest
            .iter()
            .all(|r| r.race.class_id == 2 && r.updated_at > 0)
    );
    assert_eq!(
        ids(&both.aws.latest_races(2, 100).await?),
        vec![10_000_000_000, 9, 5, 3, 1]
    );
    assert_eq!(
        ids(&both.aws.latest_races(2, 100).await?),
        ids(&both.memory.latest_races(2, 100).await?)
    );
    assert!(both.aws.latest_races(2, 0).await?.is_empty());
    assert!(both.aws.latest_races(6, 5).await?.is_empty());

    for stored in both.memory.latest_races(2, 100).await? {
        let aws = both.aws.standings(stored.race).await?.expect("stored race");
        assert_eq!(aws.standings, stored.standings);
    }
    assert_eq!(both.aws.standings(race(2, 4)).await?, None);
    Ok(())
}

#[tokio::test]
async fn the_leaderboard_ranks_best_first_with_ties_in_record_order() -> TestResult {
    let both = Both {
        aws: support::table().await,
        memory: MemoryTable::new(),
    };
    let class = 1;
    let rows = [
        entry(1, "a", 1_000_000, 10, 100),
        entry(2, "b", 3_000_000, 10, 100),
        entry(3, "c", 2_000_000, 12, 100),
        entry(4, "d", 2_000_000, 11, 100), // tie with 3, earlier race ranks first
        entry(5, "e", 2_000_000, 11, 90),  // tie with 4, earlier final ranks first
        entry(6, "f", 4_294_967_295, 1, 1), // the largest output survives exactly
        entry(7, "g", 1, 1, 1),            // the smallest too
        entry(8, "h", 2_000_000, 11, 90),  // full tie with 5 but the name
    ];
    for row in &rows {
        both.offer(class, row).await?;
    }
    // A better result of racer 1 replaces its row; another class is not mixed in.
    both.offer(class, &entry(1, "a", 2_500_000, 13, 100))
        .await?;
    both.offer(2, &entry(1, "a", 9_000_000, 13, 100)).await?;

    let all = both.aws.leaderboard(class, 100).await?;
    assert_eq!(all, both.memory.leaderboard(class, 100).await?);
    assert_eq!(
        all.iter().map(|r| r.racer_id).collect::<Vec<_>>(),
        vec![6, 2, 1, 5, 8, 4, 3, 7]
    );
    for limit in 1..=8 {
        assert_eq!(
            both.aws.leaderboard(class, limit).await?,
            both.memory.leaderboard(class, limit).await?,
            "limit {limit}"
        );
    }
    assert!(both.aws.leaderboard(class, 0).await?.is_empty());
    assert!(both.aws.leaderboard(5, 10).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn finals_of_a_race_are_listed_by_racer() -> TestResult {
    let both = Both {
        aws: support::table().await,
        memory: MemoryTable::new(),
    };
    let final_of = |race: RaceKey, racer_id: u32, output: u32| RacerFinal {
        class_id: race.class_id,
        race_id: race.race_id,
        racer_id,
        name: format!("racer {racer_id} ünïcode"),
        output: out(output),
        finished_at: 1_700_000_000_000 + u64::from(racer_id),
    };
    let here = race(6, 77);
    for racer in [9, 10, 2, 100] {
        both.put_final(&final_of(here, racer, racer * 1_111))
            .await?;
    }
    both.put_final(&final_of(here, 9, 9 * 1_111)).await?; // a replay changes nothing
    both.put_final(&final_of(race(6, 78), 1, 5)).await?;
    both.put_final(&final_of(race(5, 77), 1, 5)).await?;
    // Standings share the race's partition but are not finals.
    both.standings(here, &[(9, out(1))].into_iter().collect())
        .await?;

    let finals = both.aws.finals(here).await?;
    assert_eq!(finals, both.memory.finals(here).await?);
    assert_eq!(
        finals.iter().map(|f| f.racer_id).collect::<Vec<_>>(),
        vec![2, 9, 10, 100]
    );
    assert!(both.aws.finals(race(6, 79)).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn bests_and_traces_read_back_exactly() -> TestResult {
    let table = support::table().await;
    let bests = BestsKey {
        racer_id: 12,
        class_id: 4,
    };
    let trace = TraceKey {
        racer_id: 12,
        race: race(4, 5_000_000),
    };
    let series: SecondSeries = [
        (1, out(1_517_880)),
        (2, out(1)),
        (5, out(u32::MAX)),
        (300, out(1_234_567)),
    ]
    .into_iter()
    .collect();
    merge_into(&table, &bests, &series, &RetryPolicy::immediate(3)).await?;
    merge_into(&table, &trace, &series, &RetryPolicy::immediate(3)).await?;
    assert_eq!(table.bests(bests).await?, Some(series.clone()));
    assert_eq!(table.trace(trace).await?, Some(series));

    let other_class = BestsKey {
        racer_id: 12,
        class_id: 5,
    };
    assert_eq!(table.bests(other_class).await?, None);
    let other_race = TraceKey {
        racer_id: 12,
        race: race(4, 5_000_001),
    };
    assert_eq!(table.trace(other_race).await?, None);
    Ok(())
}

#[tokio::test]
async fn a_missing_table_is_a_permanent_error_naming_the_operation() {
    let config = support::sdk_config().await;
    let table = DynamoTable::from_conf(&config, "no-such-table");
    let error = table
        .bests(BestsKey {
            racer_id: 1,
            class_id: 1,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PortError::Permanent(m) if m.contains("GetItem") && m.contains("ResourceNotFoundException")),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_table_has_the_indexes_billing_and_stream_of_the_schema() -> TestResult {
    use aws_sdk_dynamodb::types::{BillingMode, StreamViewType};

    let table = support::table().await;
    let description = table
        .client
        .describe_table()
        .table_name(&table.table)
        .send()
        .await?
        .table
        .expect("a table description");
    let names = |keys: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        keys.iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        names(description.key_schema()),
        vec![pair("pk", "HASH"), pair("sk", "RANGE")]
    );
    let gsi = &description.global_secondary_indexes()[0];
    assert_eq!(gsi.index_name(), Some("gsi1"));
    assert_eq!(
        names(gsi.key_schema()),
        vec![pair("gsi1pk", "HASH"), pair("gsi1sk", "RANGE")]
    );
    let lsi = &description.local_secondary_indexes()[0];
    assert_eq!(lsi.index_name(), Some("byBest"));
    assert_eq!(
        names(lsi.key_schema()),
        vec![pair("pk", "HASH"), pair("best", "RANGE")]
    );
    assert_eq!(
        description
            .billing_mode_summary()
            .and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let stream = description.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );
    Ok(())
}
