// Wire shapes of the API and MQTT, mirroring crates/alleycat-domain/src/views.rs (camelCase JSON).

export type Platform = 'aws' | 'local';

/** `GET /config`. */
export interface ClientConfig {
  platform: Platform;
  region: string;
  identityPoolId: string;
  /** The IoT endpoint host on AWS, a `ws://` URL on the embedded stack. */
  mqttEndpoint: string;
  publishTopic: string;
  subscribeTopicPrefix: string;
  raceSeconds: number;
  windowSeconds: number;
  topK: number;
}

export interface RankedOutput {
  rank: number;
  racerId: number;
  output: number;
}

/** One race of `GET /races?classId=&limit=`. */
export interface RaceSummary {
  raceId: number;
  racers: number;
  leader: RankedOutput | null;
  updatedAt: number;
  over: boolean;
}

/** `GET /races?classId=&limit=`: newest first. */
export interface RaceList {
  classId: number;
  races: RaceSummary[];
}

/** `GET /races/{raceId}?classId=`. */
export interface RaceView {
  classId: number;
  raceId: number;
  updatedAt: number;
  over: boolean;
  standings: RankedOutput[];
}

export interface LeaderboardEntry {
  /** 1-based place in the class (competition ranking); absent from older backends. */
  place?: number;
  racerId: number;
  name: string;
  best: number;
  raceId: number;
  updatedAt: number;
}

/** `GET /leaderboard?classId=&limit=[&cursor=]`. */
export interface LeaderboardView {
  classId: number;
  entries: LeaderboardEntry[];
  /** The cursor of the following page; `null` on the last page (absent from older backends). */
  next?: string | null;
}

/** `GET /racers/{racerId}/rank?classId=`: the racer's place on the class leaderboard. */
export interface RacerRank {
  classId: number;
  racerId: number;
  /** 1-based, as the leaderboard ranks (competition ranking). */
  place: number;
  /** Racers on the class leaderboard. */
  of: number;
  best: number;
  raceId: number;
}

/** `GET /racers/{racerId}/bests?classId=`: index 0 is second 1; `null` where never ridden. */
export interface RacerBestsView {
  racerId: number;
  classId: number;
  seconds: (number | null)[];
}

/** `GET /history/{classId}`: `url` is `null` while the class has no history object yet. */
export interface HistoryLink {
  classId: number;
  url: string | null;
  expiresAt: number | null;
}

/** Every racer's best, counted in buckets of `step` ten-thousandths (see `realtime.ts`). */
export interface LiveBests {
  step: number;
  /** The highest non-empty bucket. */
  max: number;
  /** The non-empty buckets, encoded. */
  runs: string;
}

/** Live standings on `alleycat-subscribe/class-<c>`: at most one a second per race, at most 5 KB. */
export interface LiveStandings {
  msg: 'standings';
  classId: number;
  raceId: number;
  ts: number;
  /** Racers with a best in the race. */
  riders: number;
  /** The best 20 as [racerId, output], best first. */
  top: [number, number][];
  bests: LiveBests;
}

/** Device message on `alleycat-publish` (DESIGN section 2). */
export interface DeviceMessage {
  uuid: string;
  event: 'update' | 'final';
  deviceTimestamp: number;
  second: number;
  raceId: number;
  name: string;
  racerId: number;
  classId: number;
  cadence: number;
  resistance: number;
}
