// AWS: the Cognito unauthenticated identity (credentials kept fresh), the presigned WSS URL of
// IoT Core kept fresh, and SigV4-signed API requests. Loaded with a dynamic import, only when
// `GET /config` says the platform is `aws`.

import { fromCognitoIdentityPool } from '@aws-sdk/credential-providers';
import type { ClientConfig } from './types';
import type { RiderIdentity } from './identity';
import type { UrlSource } from './mqtt';
import { presignIotUrl, refreshDelay, signRequestHeaders, type AwsCredentials, type PresignedUrl } from './presign';

/** Credentials are renewed this long before they expire. */
const CREDENTIALS_MARGIN_MS = 5 * 60_000;
/** A URL is re-signed before an attempt if it expires sooner than this. */
const URL_MARGIN_MS = 2 * 60_000;

/** Credentials of a Cognito identity, with the identity's id. */
export type GuestCredentials = AwsCredentials & { identityId: string };

export type GuestCredentialsProvider = () => Promise<GuestCredentials>;

/**
 * The page's Cognito unauthenticated identity. The SDK's provider keeps the identity id in the
 * browser's storage (IndexedDB), so a reload is the same identity, with the same claims.
 */
export class CognitoGuest {
  private credentials: GuestCredentials | null = null;
  private inFlight: Promise<GuestCredentials> | null = null;
  private readonly provider: GuestCredentialsProvider;

  constructor(
    config: ClientConfig,
    private readonly now: () => Date = () => new Date(),
    provider?: GuestCredentialsProvider,
  ) {
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
}

/** The page as the Cognito identity: MQTT client id = identity id; API requests signed. */
export async function cognitoRider(guest: CognitoGuest, region: string, now: () => Date = () => new Date()): Promise<RiderIdentity> {
  const { identityId } = await guest.current();
  return {
    identityId,
    mqtt: { clientId: identityId },
    authorize: async (method, url) =>
      signRequestHeaders({
        method,
        url,
        service: 'execute-api',
        region,
        credentials: await guest.current(),
        now: now(),
      }),
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
