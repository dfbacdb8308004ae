import { createApp } from 'vue';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import App from './App.vue';
import { SESSION } from './inject';
import { createSession } from './session';

const session = createSession(window.location, import.meta.env.VITE_API_URL as string | undefined);
const app = createApp(App);
app.provide(SESSION, session);
app.config.errorHandler = (error) => {
  // Shown in the page rather than left as a broken screen.
  session.report('page', new Error(`The page hit a problem: ${(error as Error)?.message ?? String(error)}`));
};
app.mount('#app');
void session.loadConfig();
window.addEventListener('online', () => session.setOnline(true));
window.addEventListener('offline', () => session.setOnline(false));
window.setInterval(() => session.tickClock(), 1000);
