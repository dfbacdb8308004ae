// The page's state and what the controls do: configuration, the MQTT connection, the race, the
// rankings and the API views. Components only render this state and call these actions; the
// logic they rely on (messages, output, placement, history, signing) lives in the plain modules.

import { markRaw, reactive } from 'vue';
import { Api, ApiError, type Fetch } from './api';
import { claimRacer, type ClaimView } from './claim';
import { apiBaseUrl, classTopic, localMqttUrl, speedFactor } from './config';
import { emptyHistory, fetchHistory, percentileAt, type ClassHistory, type Percentile } from './history';
import {
  browserStorage,
  forgetLocalIdentity,
  loadLocalIdentity,
  localRider,
  type KeyValueStore,
  type RiderIdentity,
} from './identity';
import { LeaderboardPages } from './leaderboard';
import { MessageLog, type LoggedMessage } from './messages';
import { MqttConnection, StaticUrl, type ConnectFn, type ConnectionState, type UrlSource } from './mqtt';
import { beatsRecord, placeInTopK, recordAt, type Entry, type Placement } from './ranking';
import { liveRows, parseRealtime, type LiveRow, type ParsedRealtime } from './realtime';
import { RaceRun, RideGenerator, raceIdAt, type RaceTick } from './ride';
import { rideKey, ridingNow, type RidingRacer } from './riding';
import { ROSTER_SIZE, racerName } from './roster';
import type { ClientConfig, LeaderboardEntry, RaceSummary, RacerRank, RankedOutput } from './types';

export type Phase = 'idle' | 'racing' | 'finished';

/**
 * A row of "Here now": a racer, their best, its text (exactly as the live message carried it, or
 * the bike's own best), their rank, and whether it is this bike's racer.
 */
export type HereNowRow = LiveRow;

/** Why the last claim did not let the rider ride: another rider holds the racer, or it failed. */
export interface ClaimProblem {
  kind: 'taken' | 'failed';
  message: string;
}

export interface PageError {
  key: string;
  message: string;
}

/** How long the page waits for the broker to acknowledge the final message. */
const FINAL_ACK_TIMEOUT_MS = 5000;
/** After a race: how often and how many times the results and leaderboard are fetched again. */
export const POST_RACE_POLL_MS = 1500;
export const POST_RACE_POLLS = 8;
/** Leaderboard rows per page; the pages walk the whole class with the API's cursors. */
export const LEADERBOARD_PAGE = 20;
export const RACES_LIMIT = 20;
/** Races looked at for racers riding now: the open ones are the newest. */
export const RIDING_RACES = 3;
/** How often the racers riding now are looked up while the page is idle. */
export const RIDING_REFRESH_MS = 5000;

function describe(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the session talks to; the browser's own unless a test gives fakes. */
export interface SessionDeps {
  fetch?: Fetch;
  storage?: KeyValueStore;
  mqttConnect?: ConnectFn;
}

export function createSession(
  location: Pick<Location, 'search' | 'origin'>,
  envApiUrl: string | undefined,
  deps: SessionDeps = {},
) {
  const apiBase = apiBaseUrl(location.search, envApiUrl, location.origin);
  const api = new Api(apiBase, deps.fetch);
  const storage = (): KeyValueStore => deps.storage ?? browserStorage();
  const speed = speedFactor(location.search);
  const log = new MessageLog();

  const state = reactive({
    apiBase,
    speed,
    config: null as ClientConfig | null,
    configLoading: true,
    connection: 'offline' as ConnectionState,
    /** This page's identity (the Cognito identity id on AWS, `local:…` on the embedded stack). */
    identityId: null as string | null,
    /** A claim request is under way (the race starts when it succeeds). */
    claiming: false,
    /** The latest successful claim. */
    claim: null as ClaimView | null,
    claimProblem: null as ClaimProblem | null,
    racerId: 1,
    classId: 1,
    phase: 'idle' as Phase,
    raceId: null as number | null,
    second: 0,
    raceSeconds: 300,
    liveOutput: null as number | null,
    cadence: null as number | null,
    resistance: null as number | null,
    nudges: { cadence: 0, resistance: 0 },
    /** Per second (index = second - 1): the live ride, the personal record, the all-time #1. */
    series: markRaw({ self: [] as (number | null)[], record: [] as (number | null)[], leader: [] as (number | null)[] }),
    seriesVersion: 0,
    bests: null as (number | null)[] | null,
    history: null as ClassHistory | null,
    historyLoading: false,
    alltime: { rows: [], selfIndex: -1, beyondTopK: false } as Placement,
    alltimeSecond: 1,
    recordNow: false,
    recordSeconds: 0,
    hereNowRaceId: null as number | null,
    hereNow: [] as HereNowRow[],
    /** How many ride in the shown race, as its latest live message counts them. */
    hereNowRiders: 0,
    hereNowUpdatedAt: 0,
    /** The shown page of the class leaderboard. */
    leaderboard: [] as LeaderboardEntry[],
    /** The shown page (0-based), and whether pages follow or precede it. */
    leaderboardPage: 0,
    /** The place of the shown page's first row. */
    leaderboardFirstPlace: 1,
    leaderboardHasNext: false,
    leaderboardHasPrevious: false,
    /** The racer's place on the class leaderboard and the class size (null: not on it, or unknown). */
    rank: null as RacerRank | null,
    /** Where the live output stands among all riders ever at the current second (the history's sample). */
    percentile: null as Percentile | null,
    /** The page's racers riding now in the class (in an open race's standings), not by this page. */
    ridingNow: [] as RidingRacer[],
    races: [] as RaceSummary[],
    selectedRaceId: null as number | null,
    raceResults: [] as RankedOutput[],
    resultsLoading: false,
    refreshing: false,
    messages: [] as LoggedMessage[],
    errors: [] as PageError[],
    connectionNote: '',
  });

  let connection: MqttConnection | null = null;
  let rider: RiderIdentity | null = null;
  let run: RaceRun | null = null;
  let ride = new RideGenerator();
  /** Latest live message per race of the selected class. */
  const latest = new Map<number, ParsedRealtime>();
  let classLoad = 0;
  const pages = new LeaderboardPages(LEADERBOARD_PAGE);
  /** The first page of the leaderboard: its racers, and whether more follow. */
  let firstPage = { racers: new Set<number>(), more: false };
  /** Rides of this page (`rideKey`), which are not someone else riding now. */
  const ownRides = new Set<string>();
  let ridingCheckedAt = 0;
  /** Whether the last rank lookup answered (a rank, or "not on the board"). */
  let rankKnown = false;

  function setError(key: string, error: unknown | null): void {
    const rest = state.errors.filter((e) => e.key !== key);
    state.errors = error === null ? rest : [...rest, { key, message: describe(error) }];
  }

  function dismissError(key: string): void {
    setError(key, null);
  }

  /** Runs an API call, showing its failure in the page under `key` (and clearing it on success). */
  async function guarded<T>(key: string, call: () => Promise<T>): Promise<T | undefined> {
    try {
      const value = await call();
      setError(key, null);
      return value;
    } catch (error) {
      setError(key, error);
      return undefined;
    }
  }

  function resetSeries(): void {
    const n = state.raceSeconds;
    state.series = markRaw({
      self: new Array<number | null>(n).fill(null),
      record: Array.from({ length: n }, (_, i) => recordAt(state.bests, i + 1)),
      leader: Array.from({ length: n }, (_, i) => state.history?.seconds.get(i + 1)?.[0]?.output ?? null),
    });
    state.seriesVersion++;
  }

  function refreshCurves(): void {
    const n = state.raceSeconds;
    const series = state.series;
    series.record = Array.from({ length: n }, (_, i) => recordAt(state.bests, i + 1));
    series.leader = Array.from({ length: n }, (_, i) => state.history?.seconds.get(i + 1)?.[0]?.output ?? null);
    if (series.self.length !== n) series.self = new Array<number | null>(n).fill(null);
    state.seriesVersion++;
  }

  function updateAlltime(second: number, self: Entry | null): void {
    const top = state.history?.seconds.get(second) ?? [];
    const k = state.history?.topK ?? state.config?.topK ?? 100;
    state.alltime = placeInTopK(top, self, k);
    state.alltimeSecond = second;
    state.percentile = self === null ? null : percentileAt(state.history?.sample ?? null, second, self.output);
  }

  function hereNowTarget(): number | null {
    if (state.raceId !== null) return state.raceId;
    if (state.config === null) return null;
    return raceIdAt(Date.now(), state.config.windowSeconds);
  }

  /** The ridden racer and their best so far, while riding the race `raceId`; else `null`. */
  function ownBest(raceId: number | null): Entry | null {
    if (state.phase !== 'racing' || raceId === null || state.raceId !== raceId) return null;
    let best: number | null = null;
    for (const output of state.series.self) if (output !== null && (best === null || output > best)) best = output;
    return best === null ? null : { racerId: state.racerId, output: best };
  }

  function refreshHereNow(): void {
    const target = hereNowTarget();
    state.hereNowRaceId = target;
    const entry = target === null ? undefined : latest.get(target);
    state.hereNow = entry === undefined ? [] : liveRows(entry, ownBest(target));
    state.hereNowRiders = entry?.message.riders ?? 0;
    state.hereNowUpdatedAt = entry?.message.ts ?? 0;
  }

  function onMessage(topic: string, payload: string): void {
    state.messages = log.add('received', topic, payload, Date.now()).slice();
    const parsed = parseRealtime(payload);
    if (parsed === null || parsed.message.classId !== state.classId) return;
    const { message } = parsed;
    const previous = latest.get(message.raceId);
    if (previous !== undefined && previous.message.ts > message.ts) return;
    latest.set(message.raceId, parsed);
    while (latest.size > 8) latest.delete(latest.keys().next().value as number);
    refreshHereNow();
  }

  async function loadConfig(): Promise<void> {
    state.configLoading = true;
    const config = await guarded('config', () => api.config());
    state.configLoading = false;
    if (config === undefined) return;
    state.config = config;
    state.raceSeconds = config.raceSeconds;
    resetSeries();
    await connect(config);
    void loadClass();
  }

  /**
   * The page's identity and the MQTT connection made with it: on AWS the Cognito identity (client
   * id = identity id, presigned URL), on the embedded stack the stored or a new local identity
   * (client id = username = identity id, password = token).
   */
  async function connect(config: ClientConfig): Promise<void> {
    connection?.end();
    connection = null;
    rider = null;
    state.identityId = null;
    let source: UrlSource;
    if (config.platform === 'aws') {
      let aws: typeof import('./aws');
      try {
        aws = await import('./aws');
      } catch (error) {
        setError('identity', new Error(`Loading the AWS connection code failed: ${describe(error)}`));
        return;
      }
      const guest = new aws.CognitoGuest(config);
      try {
        rider = await aws.cognitoRider(guest);
      } catch (error) {
        setError('identity', new Error(`Getting a Cognito identity failed: ${describe(error)}`));
        return;
      }
      source = new aws.CognitoIotUrl(config, guest);
    } else {
      try {
        rider = localRider(await loadLocalIdentity(api, storage()));
      } catch (error) {
        setError('identity', error);
        return;
      }
      source = new StaticUrl(localMqttUrl(config.mqttEndpoint, apiBase));
    }
    setError('identity', null);
    state.identityId = rider.identityId;
    connection = new MqttConnection(
      source,
      {
        onState: (s) => {
          state.connection = s;
          if (s === 'connected') state.connectionNote = '';
        },
        onMessage,
        onError: (message) => (state.connectionNote = message),
      },
      { ...rider.mqtt, connect: deps.mqttConnect },
    );
    connection.setTopic(classTopic(config, state.classId));
    try {
      await connection.start();
      setError('mqtt', null);
    } catch (error) {
      setError('mqtt', new Error(`Connecting to the live standings failed: ${describe(error)}`));
    }
  }

  /**
   * Claims `racerId` for this page's identity. True on success; otherwise the reason is shown in
   * the race panel (another rider holds it, or what failed) and the rider does not ride.
   */
  async function claim(racerId: number): Promise<boolean> {
    state.claimProblem = null;
    if (rider === null) {
      state.claimProblem = {
        kind: 'failed',
        message: `Claiming racer ${racerId} failed: this page has no identity yet (see the error above)`,
      };
      return false;
    }
    state.claiming = true;
    try {
      const outcome = await claimRacer(api, rider, racerId);
      if (outcome.kind === 'taken') {
        state.claimProblem = { kind: 'taken', message: outcome.message };
        return false;
      }
      state.claim = outcome.claim;
      return true;
    } catch (error) {
      // The stack no longer knows the stored identity (started afresh): the next load gets a new one.
      if (error instanceof ApiError && error.status === 403 && state.config?.platform === 'local') {
        forgetLocalIdentity(apiBase, storage());
      }
      state.claimProblem = { kind: 'failed', message: describe(error) };
      return false;
    } finally {
      state.claiming = false;
    }
  }

  /**
   * Whether the racer may be on the class leaderboard: on its first page, or further down it (more
   * pages follow, or an older backend's full page). Asking for a rank only then keeps the page from
   * requesting ranks that cannot exist, which browsers log as failed loads (404).
   */
  function mayHaveRow(): boolean {
    return firstPage.racers.has(state.racerId) || firstPage.more;
  }

  /**
   * Whether the racer may have a personal-record curve in the class: they are on its leaderboard
   * (they finished a race in it), or it cannot be told.
   */
  function mayHaveBests(): boolean {
    return firstPage.racers.has(state.racerId) || state.rank !== null || (firstPage.more && !rankKnown);
  }

  async function loadRank(): Promise<RacerRank | null> {
    const { racerId, classId } = state;
    if (!mayHaveRow()) {
      state.rank = null;
      rankKnown = true;
      return null;
    }
    const rank = await guarded('rank', () => api.rank(racerId, classId));
    if (state.racerId !== racerId || state.classId !== classId) return null;
    rankKnown = rank !== undefined;
    state.rank = rank ?? null;
    return state.rank;
  }

  async function loadBests(): Promise<void> {
    const { racerId, classId } = state;
    if (!mayHaveBests()) {
      state.bests = null;
      refreshCurves();
      return;
    }
    const view = await guarded('bests', () => api.bests(racerId, classId));
    if (state.racerId !== racerId || state.classId !== classId) return;
    state.bests = view?.seconds ?? null;
    refreshCurves();
  }

  /** Loads page `index` of the leaderboard (the first by default) and shows it. */
  async function loadLeaderboard(index = 0): Promise<LeaderboardEntry[] | undefined> {
    const classId = state.classId;
    const cursor = pages.cursorOf(index);
    if (cursor === undefined) return undefined;
    const view = await guarded('leaderboard', () => api.leaderboard(classId, LEADERBOARD_PAGE, cursor));
    if (view === undefined || state.classId !== classId) return undefined;
    pages.loaded(index, view);
    if (index === 0) {
      const more = typeof view.next === 'string' || (view.next === undefined && view.entries.length >= LEADERBOARD_PAGE);
      firstPage = { racers: new Set(view.entries.map((e) => e.racerId)), more };
    }
    state.leaderboard = view.entries;
    state.leaderboardPage = pages.page;
    state.leaderboardFirstPlace = pages.firstPlace;
    state.leaderboardHasNext = pages.hasNext;
    state.leaderboardHasPrevious = pages.hasPrevious;
    return view.entries;
  }

  /** The following page of the leaderboard, if any. */
  async function nextLeaderboardPage(): Promise<void> {
    if (pages.hasNext) await loadLeaderboard(pages.page + 1);
  }

  /** The preceding page of the leaderboard, if any. */
  async function previousLeaderboardPage(): Promise<void> {
    if (pages.hasPrevious) await loadLeaderboard(pages.page - 1);
  }

  /**
   * The page's racers riding now in the class: those in the standings of its open races, less
   * this page's own rides.
   */
  async function loadRidingNow(): Promise<void> {
    const classId = state.classId;
    ridingCheckedAt = Date.now();
    const list = await guarded('riding', () => api.races(classId, RIDING_RACES));
    if (list === undefined || state.classId !== classId) return;
    const open = list.races.filter((r) => !r.over);
    const views = await guarded('riding', () => Promise.all(open.map((r) => api.race(r.raceId, classId))));
    if (views === undefined || state.classId !== classId) return;
    state.ridingNow = ridingNow(views, ROSTER_SIZE, ownRides);
  }

  /** Whether the picked racer is riding now in the class (by someone else than this page). */
  function pickedRidingNow(): boolean {
    return state.ridingNow.some((r) => r.racerId === state.racerId);
  }

  async function loadRaceResults(raceId: number): Promise<RankedOutput[] | undefined> {
    const classId = state.classId;
    state.resultsLoading = true;
    const view = await guarded('results', () => api.race(raceId, classId));
    state.resultsLoading = false;
    if (view === undefined || state.classId !== classId || state.selectedRaceId !== raceId) return undefined;
    state.raceResults = view.standings;
    return view.standings;
  }

  /** Reloads the class's race list; selects `prefer` if listed, else keeps or picks the newest. */
  async function loadRaces(prefer: number | null = null): Promise<RankedOutput[] | undefined> {
    const classId = state.classId;
    const list = await guarded('races', () => api.races(classId, RACES_LIMIT));
    if (list === undefined || state.classId !== classId) return undefined;
    state.races = list.races;
    const ids = list.races.map((r) => r.raceId);
    const pick =
      prefer !== null && ids.includes(prefer)
        ? prefer
        : state.selectedRaceId !== null && ids.includes(state.selectedRaceId)
          ? state.selectedRaceId
          : (ids[0] ?? null);
    state.selectedRaceId = pick;
    if (pick === null) {
      state.raceResults = [];
      return undefined;
    }
    return loadRaceResults(pick);
  }

  async function loadHistory(): Promise<void> {
    const classId = state.classId;
    const config = state.config;
    if (config === null) return;
    const load = ++classLoad;
    state.historyLoading = true;
    // A class with no history object yet: the API says so (no URL), and nothing is fetched.
    const history = await guarded('history', () => fetchHistory(api, classId, config.topK));
    if (load !== classLoad) return;
    state.historyLoading = false;
    state.history = markRaw(history ?? emptyHistory(classId, config.topK));
    refreshCurves();
    if (state.phase !== 'racing') updateAlltime(Math.max(1, state.second), null);
  }

  /** Everything that depends on the class: history (reloaded before each race too), bests, boards. */
  async function loadClass(): Promise<void> {
    if (state.config === null) return;
    pages.reset();
    // The leaderboard first: it tells whether a rank and records can exist.
    await Promise.all([loadLeaderboard(), loadRaces(), loadRidingNow()]);
    await loadRank();
    await Promise.all([loadHistory(), loadBests()]);
  }

  function selectClass(classId: number): void {
    if (state.phase === 'racing' || state.claiming || classId === state.classId) return;
    state.classId = classId;
    state.phase = 'idle';
    state.raceId = null;
    state.second = 0;
    state.liveOutput = null;
    state.history = null;
    state.bests = null;
    state.leaderboard = [];
    state.leaderboardPage = 0;
    state.leaderboardFirstPlace = 1;
    state.leaderboardHasNext = false;
    state.leaderboardHasPrevious = false;
    firstPage = { racers: new Set(), more: false };
    pages.reset();
    state.rank = null;
    rankKnown = false;
    state.percentile = null;
    state.ridingNow = [];
    state.races = [];
    state.selectedRaceId = null;
    state.raceResults = [];
    state.alltime = { rows: [], selfIndex: -1, beyondTopK: false };
    latest.clear();
    refreshHereNow();
    resetSeries();
    if (state.config !== null) connection?.setTopic(classTopic(state.config, classId));
    void loadClass();
  }

  function selectRacer(racerId: number): void {
    if (state.phase === 'racing' || state.claiming || racerId === state.racerId) return;
    state.racerId = racerId;
    state.claimProblem = null;
    state.phase = 'idle';
    state.raceId = null;
    state.second = 0;
    state.liveOutput = null;
    state.bests = null;
    state.recordNow = false;
    state.rank = null;
    rankKnown = false;
    state.percentile = null;
    refreshHereNow();
    resetSeries();
    void loadRank().then(() => loadBests());
  }

  function selectResultsRace(raceId: number): void {
    state.selectedRaceId = raceId;
    void loadRaceResults(raceId);
  }

  function onTick(tick: RaceTick): Promise<unknown> {
    const { second, message, output } = tick;
    state.second = second;
    state.liveOutput = output;
    state.cadence = message.cadence;
    state.resistance = message.resistance;
    state.series.self[second - 1] = output;
    state.seriesVersion++;
    const record = beatsRecord(state.bests, second, output);
    state.recordNow = record;
    if (record) state.recordSeconds++;
    updateAlltime(second, { racerId: state.racerId, output });
    // The own row of "Here now" follows the ride between live messages.
    refreshHereNow();
    const payload = JSON.stringify(message);
    const topic = state.config?.publishTopic ?? 'alleycat-publish';
    state.messages = log.add('sent', topic, payload, Date.now()).slice();
    if (connection === null) return Promise.resolve();
    return connection.publish(topic, payload).catch((error: unknown) => {
      state.connectionNote = `Publishing second ${second} failed: ${describe(error)}`;
    });
  }

  async function startRace(): Promise<void> {
    const config = state.config;
    if (config === null || state.phase === 'racing' || state.claiming) return;
    // Said before this press: the rider chose to ride a racer riding now.
    const warned = pickedRidingNow();
    // The backend takes this page's records of the racer only while it holds the racer's claim:
    // claim (or renew) it first, and ride only if that succeeded. The claim is kept afterwards.
    if (!(await claim(state.racerId))) return;
    // Someone (the simulator, another bike) may ride the racer now without a claim of ours to
    // stop them: say so before riding, and ride on the next press.
    await loadRidingNow();
    if (!warned && pickedRidingNow()) return;
    state.phase = 'racing';
    state.second = 0;
    state.liveOutput = null;
    state.recordNow = false;
    state.recordSeconds = 0;
    ride = new RideGenerator();
    state.nudges = ride.nudges;
    // The personal-record curve and the class history may have grown since the last race.
    await Promise.all([loadBests(), loadHistory()]);
    resetSeries();
    const startMs = Date.now();
    run = new RaceRun(
      {
        racerId: state.racerId,
        name: racerName(state.racerId),
        classId: state.classId,
        raceSeconds: config.raceSeconds,
        windowSeconds: config.windowSeconds,
        speed: state.speed,
        startMs,
        ride,
      },
      {
        now: () => performance.now(),
        setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
        clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
      },
      (tick) => {
        const sent = onTick(tick);
        if (tick.second < config.raceSeconds) return undefined;
        return Promise.race([sent, sleep(FINAL_ACK_TIMEOUT_MS)]);
      },
    );
    state.raceId = run.raceId;
    ownRides.add(rideKey(state.classId, run.raceId, state.racerId));
    refreshHereNow();
    run.start();
    const outcome = await run.done;
    run = null;
    if (outcome === 'finished') await afterRace();
  }

  /**
   * After the final message: the backend is asynchronous, so the race results, the leaderboard
   * and the racer's rank are fetched a few times until this racer shows in the results and on the
   * board (its first page, or a rank further down), then the race is `finished`.
   */
  async function afterRace(): Promise<void> {
    const raceId = state.raceId;
    const racerId = state.racerId;
    state.refreshing = true;
    for (let poll = 0; poll < POST_RACE_POLLS; poll++) {
      if (poll > 0) await sleep(POST_RACE_POLL_MS);
      const [board, results] = await Promise.all([loadLeaderboard(), loadRaces(raceId)]);
      const rank = await loadRank();
      const inResults = state.selectedRaceId === raceId && (results ?? []).some((r) => r.racerId === racerId);
      const inBoard = board !== undefined && (board.some((e) => e.racerId === racerId) || rank !== null);
      if (inResults && inBoard) break;
    }
    state.refreshing = false;
    state.phase = 'finished';
  }

  function nudge(which: 'cadence' | 'resistance', direction: 1 | -1): void {
    if (which === 'cadence') ride.nudgeCadence(direction);
    else ride.nudgeResistance(direction);
    state.nudges = ride.nudges;
  }

  function retryConfig(): void {
    void loadConfig();
  }

  function setOnline(online: boolean): void {
    connection?.setOnline(online);
    if (!online && state.connection !== 'connected') state.connection = 'offline';
  }

  /** Keeps "Here now" on the current start window, and who rides now fresh, while no race is ridden. */
  function tickClock(): void {
    if (state.raceId === null) refreshHereNow();
    const idle = state.phase !== 'racing' && !state.claiming && state.config !== null;
    if (idle && Date.now() - ridingCheckedAt >= RIDING_REFRESH_MS) void loadRidingNow();
  }

  function dispose(): void {
    run?.stop();
    connection?.end();
  }

  return {
    state,
    report: setError,
    loadConfig,
    retryConfig,
    selectClass,
    selectRacer,
    selectResultsRace,
    nextLeaderboardPage,
    previousLeaderboardPage,
    startRace,
    nudge,
    dismissError,
    setOnline,
    tickClock,
    dispose,
  };
}

export type Session = ReturnType<typeof createSession>;
