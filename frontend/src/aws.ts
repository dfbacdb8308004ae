// AWS IoT Core: Cognito unauthenticated credentials and a presigned WSS URL kept fresh. Loaded
// with a dynamic import, only when `GET /config` says the platform is `aws`.

import { fromCognitoIdentityPool } from '@aws-sdk/credential-providers';
import type { ClientConfig } from './types';
import type { UrlSource } from './mqtt';
import { presignIotUrl, refreshDelay, type AwsCredentials, type PresignedUrl } from './presign';

/** Credentials are renewed this long before they expire. */
const CREDENTIALS_MARGIN_MS = 5 * 60_000;
/** A URL is re-signed before an attempt if it expires sooner than this. */
const URL_MARGIN_MS = 2 * 60_000;

export class CognitoIotUrl implements UrlSource {
  private url: PresignedUrl | null = null;
  private credentials: AwsCredentials | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly provider: () => Promise<AwsCredentials>;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly config: ClientConfig,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.provider = fromCognitoIdentityPool({
      identityPoolId: config.identityPoolId,
      clientConfig: { region: config.region },
    });
  }

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
    const now = this.now();
    const expiring =
      this.credentials === null ||
      (this.credentials.expiration !== undefined &&
        this.credentials.expiration.getTime() - now.getTime() < CREDENTIALS_MARGIN_MS);
    if (expiring) this.credentials = await this.provider();
    this.url = await presignIotUrl({
      endpoint: this.config.mqttEndpoint,
      region: this.config.region,
      credentials: this.credentials!,
      now,
    });
    this.dispose();
    this.timer = setTimeout(() => void this.refresh().catch(() => undefined), refreshDelay(this.url, now));
  }
}
