// AWS: the Cognito unauthenticated identity (credentials kept fresh), the presigned WSS URL of
// IoT Core kept fresh, and the identity's OpenID token for the API's claim routes. Loaded with a
// dynamic import, only when `GET /config` says the platform is `aws`.
//
// Claims are not SigV4-signed: Cognito scopes the credentials of unauthenticated identities down
// to a list of services without API Gateway, whose IAM authorizer would refuse them. The claim
// routes take `Authorization: Bearer <OpenID token>` instead, checked by a JWT authorizer (issuer
// https://cognito-identity.amazonaws.com, audience the identity pool; `sub` is the identity id).

import {
  CognitoIdentityClient,
  GetOpenIdTokenCommand,
  type GetOpenIdTokenCommandOutput,
} from '@aws-sdk/client-cognito-identity';
import { fromCognitoIdentityPool } from '@aws-sdk/credential-providers';
import type { ClientConfig } from './types';
import type { RiderIdentity } from './identity';
import type { UrlSource } from './mqtt';
import { presignIotUrl, refreshDelay, type AwsCredentials, type PresignedUrl } from './presign';

/** Credentials are renewed this long before they expire. */
const CREDENTIALS_MARGIN_MS = 5 * 60_000;
/** A URL is re-signed before an attempt if it expires sooner than this. */
const URL_MARGIN_MS = 2 * 60_000;

/** Credentials of a Cognito identity, with the identity's id. */
export type GuestCredentials = AwsCredentials & { identityId: string };

export type GuestCredentialsProvider = () => Promise<GuestCredentials>;

/** The part of the Cognito Identity client used here (a fake in tests). */
export interface OpenIdTokenClient {
  send(command: GetOpenIdTokenCommand): Promise<Pick<GetOpenIdTokenCommandOutput, 'IdentityId' | 'Token'>>;
}

/**
 * The page's Cognito unauthenticated identity. The SDK's provider keeps the identity id in the
 * browser's storage (IndexedDB), so a reload is the same identity, with the same claims.
 */
export class CognitoGuest {
  private credentials: GuestCredentials | null = null;
  private inFlight: Promise<GuestCredentials> | null = null;
  private readonly provider: GuestCredentialsProvider;
  private readonly cognito: OpenIdTokenClient;

  constructor(
    config: ClientConfig,
    private readonly now: () => Date = () => new Date(),
    provider?: GuestCredentialsProvider,
    cognito?: OpenIdTokenClient,
  ) {
    // GetOpenIdToken is a public call (no credentials, no signature): the identity id suffices.
    this.cognito = cognito ?? new CognitoIdentityClient({ region: config.region });
    this.provider =
      provider ??
      (fromCognitoIdentityPool({
        identityPoolId: config.identityPoolId,
        clientConfig: { region: config.region },
      }) as GuestCredentialsProvider);
  }

  /** The identity id (known once credentials were obtained). */
  get identityId(): string {
    if (this.credentials === null) throw new Error('the Cognito identity is not known yet');
    return this.credentials.identityId;
  }

  /** Credentials valid for at least a few more minutes (renewed if they are about to expire). */
  current(): Promise<GuestCredentials> {
    const c = this.credentials;
    const fresh =
      c !== null &&
      (c.expiration === undefined || c.expiration.getTime() - this.now().getTime() >= CREDENTIALS_MARGIN_MS);
    if (fresh) return Promise.resolve(c);
    this.inFlight ??= this.provider()
      .then((credentials) => {
        if (typeof credentials.identityId !== 'string' || credentials.identityId === '') {
          throw new Error('Cognito gave credentials without an identity id');
        }
        this.credentials = credentials;
        return credentials;
      })
      .finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  /**
   * A new OpenID token of the identity (Cognito's GetOpenIdToken; valid 10 minutes, so one is
   * fetched for each request that needs it). Errors say what failed.
   */
  async openIdToken(): Promise<string> {
    const identityId = this.identityId;
    let answer: Pick<GetOpenIdTokenCommandOutput, 'IdentityId' | 'Token'>;
    try {
      answer = await this.cognito.send(new GetOpenIdTokenCommand({ IdentityId: identityId }));
    } catch (error) {
      throw new Error(`Cognito refused an OpenID token for identity ${identityId} (${describeError(error)})`);
    }
    if (answer.IdentityId !== undefined && answer.IdentityId !== identityId) {
      throw new Error(`Cognito gave an OpenID token for identity ${answer.IdentityId}, not for ${identityId}`);
    }
    if (typeof answer.Token !== 'string' || answer.Token === '') {
      throw new Error(`Cognito gave no OpenID token for identity ${identityId}`);
    }
    return answer.Token;
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  return String(error);
}

/**
 * The page as the Cognito identity: MQTT client id = identity id; API requests carry the
 * identity's OpenID token as a bearer token.
 */
export async function cognitoRider(guest: CognitoGuest): Promise<RiderIdentity> {
  const { identityId } = await guest.current();
  return {
    identityId,
    mqtt: { clientId: identityId },
    authorize: async () => ({ authorization: `Bearer ${await guest.openIdToken()}` }),
  };
}

export class CognitoIotUrl implements UrlSource {
  private url: PresignedUrl | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly config: ClientConfig,
    private readonly guest: CognitoGuest,
    private readonly now: () => Date = () => new Date(),
  ) {}

  current(): string {
    if (this.url === null) throw new Error('the IoT URL has not been signed yet');
    return this.url.url;
  }

  async prepare(): Promise<void> {
    const fresh = this.url !== null && this.url.expiresAt.getTime() - this.now().getTime() > URL_MARGIN_MS;
    if (!fresh) await this.refresh();
  }

  dispose(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Signs a new URL (renewing the credentials if they are about to expire) and plans the next. */
  refresh(): Promise<void> {
    this.inFlight ??= this.signNew().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async signNew(): Promise<void> {
    const credentials = await this.guest.current();
    const now = this.now();
    this.url = await presignIotUrl({
      endpoint: this.config.mqttEndpoint,
      region: this.config.region,
      credentials,
      now,
    });
    this.dispose();
    this.timer = setTimeout(() => void this.refresh().catch(() => undefined), refreshDelay(this.url, now));
  }
}
