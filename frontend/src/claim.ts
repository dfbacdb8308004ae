// Claiming a racer before riding it: `POST <api>/racers/{racerId}/claim` as this page's identity.
// The backend accepts published records of a racer only from the identity holding its claim; the
// first claim wins, a re-claim by the holder renews it (it expires after a day without one), and
// the page never releases it: riding again later just claims again.

import { ApiError, jsonOf, reasonOf, type Api } from './api';
import type { RiderIdentity } from './identity';

/** `POST /racers/{racerId}/claim` → 200. */
export interface ClaimView {
  racerId: number;
  identityId: string;
  /** Epoch ms. */
  expiresAt: number;
}

export type ClaimOutcome =
  | { kind: 'claimed'; claim: ClaimView }
  /** Another identity holds the racer (409): the message to show. */
  | { kind: 'taken'; message: string };

/** What the page says when another rider holds the racer. */
export function takenMessage(racerId: number): string {
  return `Racer ${racerId} is already taken by another rider — pick another racer`;
}

export function claimPath(racerId: number): string {
  return `/racers/${racerId}/claim`;
}

function parseClaim(value: unknown, racerId: number, identityId: string): ClaimView {
  if (typeof value !== 'object' || value === null) throw new Error('the answer is not a JSON object');
  const v = value as Record<string, unknown>;
  if (v.racerId !== racerId) throw new Error(`the answer is a claim of racer ${JSON.stringify(v.racerId)}`);
  if (v.identityId !== identityId) {
    throw new Error(`the claim is held by ${JSON.stringify(v.identityId)}, not by this page's identity ${identityId}`);
  }
  if (typeof v.expiresAt !== 'number' || !Number.isFinite(v.expiresAt)) {
    throw new Error('the answer has no expiresAt');
  }
  return { racerId, identityId, expiresAt: v.expiresAt };
}

/**
 * Claims `racerId` for `identity`: `claimed` on 200 (the claim checked to be this racer's and
 * this identity's), `taken` on 409; any other answer or a network failure is an ApiError saying
 * what failed, with a hint for the statuses a rider can act on.
 */
export async function claimRacer(api: Api, identity: RiderIdentity, racerId: number): Promise<ClaimOutcome> {
  const path = claimPath(racerId);
  const what = `Claiming racer ${racerId} (POST ${path})`;
  const url = `${api.base}${path}`;
  let headers: Record<string, string>;
  try {
    headers = await identity.authorize('POST', url);
  } catch (error) {
    throw new ApiError(what, null, `could not authorize the request: ${(error as Error).message}`);
  }
  const response = await api.send(what, 'POST', url, headers);
  if (response.status === 409) return { kind: 'taken', message: takenMessage(racerId) };
  if (!response.ok) {
    const reason = await reasonOf(response);
    const hint =
      response.status === 401 || response.status === 403
        ? ' — the backend did not accept this page’s identity; reload the page to get a new one'
        : '';
    throw new ApiError(what, response.status, `${reason}${hint}`);
  }
  const body = await jsonOf<unknown>(what, response);
  try {
    return { kind: 'claimed', claim: parseClaim(body, racerId, identity.identityId) };
  } catch (error) {
    throw new ApiError(what, response.status, (error as Error).message);
  }
}
