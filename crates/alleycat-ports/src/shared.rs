//! Every port through an [`Arc`], so one store can serve several handlers at once (the embedded
//! stack binds one table to four functions) without each adapter cloning its own handles.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use alleycat_domain::{Claim, LeaderboardEntry, RaceKey, RacerFinal, SecondSeries};

use crate::error::PortError;
use crate::objects::{Object, ObjectStore, PutCondition};
use crate::realtime::Publisher;
use crate::table::{BestsKey, Claims, Finals, MergeStore, Queries, StoredStandings, TraceKey};

impl<K: Sync, V, T: MergeStore<K, V> + Send> MergeStore<K, V> for Arc<T> {
    type Version = T::Version;

    fn empty(&self, key: &K) -> V {
        (**self).empty(key)
    }

    fn load(
        &self,
        key: &K,
    ) -> impl Future<Output = Result<Option<(V, Self::Version)>, PortError>> + Send {
        (**self).load(key)
    }

    fn store(
        &self,
        key: &K,
        value: &V,
        expected: Option<&Self::Version>,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).store(key, value, expected)
    }
}

impl<T: Finals + Send> Finals for Arc<T> {
    fn put_final(&self, result: &RacerFinal) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).put_final(result)
    }

    fn offer_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
    ) -> impl Future<Output = Result<bool, PortError>> + Send {
        (**self).offer_record(class_id, entry)
    }
}

impl<T: Queries + Send> Queries for Arc<T> {
    fn latest_races(
        &self,
        class_id: u8,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredStandings>, PortError>> + Send {
        (**self).latest_races(class_id, limit)
    }

    fn standings(
        &self,
        race: RaceKey,
    ) -> impl Future<Output = Result<Option<StoredStandings>, PortError>> + Send {
        (**self).standings(race)
    }

    fn leaderboard(
        &self,
        class_id: u8,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LeaderboardEntry>, PortError>> + Send {
        (**self).leaderboard(class_id, limit)
    }

    fn finals(
        &self,
        race: RaceKey,
    ) -> impl Future<Output = Result<Vec<RacerFinal>, PortError>> + Send {
        (**self).finals(race)
    }

    fn bests(
        &self,
        key: BestsKey,
    ) -> impl Future<Output = Result<Option<SecondSeries>, PortError>> + Send {
        (**self).bests(key)
    }

    fn trace(
        &self,
        key: TraceKey,
    ) -> impl Future<Output = Result<Option<SecondSeries>, PortError>> + Send {
        (**self).trace(key)
    }
}

impl<T: ObjectStore + Send> ObjectStore for Arc<T> {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Object>, PortError>> + Send {
        (**self).get(key)
    }

    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Option<PutCondition>,
    ) -> impl Future<Output = Result<String, PortError>> + Send {
        (**self).put(key, bytes, content_type, condition)
    }

    fn exists(&self, key: &str) -> impl Future<Output = Result<bool, PortError>> + Send {
        (**self).exists(key)
    }

    fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<String, PortError>> + Send {
        (**self).presign_get(key, ttl)
    }
}

impl<T: Publisher + Send> Publisher for Arc<T> {
    fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).publish(topic, payload)
    }
}

impl<T: Claims + Send> Claims for Arc<T> {
    fn claims(
        &self,
        racer_ids: &[u32],
    ) -> impl Future<Output = Result<HashMap<u32, Claim>, PortError>> + Send {
        (**self).claims(racer_ids)
    }

    fn put_claim(
        &self,
        claim: &Claim,
        expected: Option<&Claim>,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).put_claim(claim, expected)
    }

    fn delete_claim(&self, expected: &Claim) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).delete_claim(expected)
    }
}
