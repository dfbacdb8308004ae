import { inject, type InjectionKey } from 'vue';
import type { Session } from './session';

export const SESSION: InjectionKey<Session> = Symbol('session');

export function useSession(): Session {
  const session = inject(SESSION);
  if (session === undefined) throw new Error('no session provided');
  return session;
}
