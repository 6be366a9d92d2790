// The host app: a form that starts a broadcast (the typed API client, cross-origin), the seed's
// BroadcastPage (polling through this origin's /api), and the same task followed live over SSE
// from the longtasks origin (useLongTask).
import { createApiClient, readableError } from '@longtasks/ui';
import { LongTaskStatusCard, taskCardProps, useLongTask, useLongTaskPersistence } from '@longtasks/ui/react';
import { useMemo, useState } from 'react';
import { BroadcastPage } from 'seed/BroadcastPage';

export interface HostConfig {
  /** The longtasks service's origin (another origin than this app's). */
  apiBase: string;
  token: string;
  businessId: number;
}

function StartBroadcast({ config, onStarted }: { config: HostConfig; onStarted: (taskId: number) => void }) {
  const client = useMemo(() => createApiClient({ baseUrl: config.apiBase, getToken: () => config.token }), [config]);
  const [error, setError] = useState<string | null>(null);
  const { saveTask } = useLongTaskPersistence(config.businessId, 'broadcast');

  async function submit(form: HTMLFormElement) {
    const data = new FormData(form);
    const field = (name: string) => {
      const value = data.get(name);
      return typeof value === 'string' ? value : '';
    };
    setError(null);
    try {
      const started = await client.startBroadcast({
        name: field('name'),
        message: { text: field('text') },
        recipients: field('recipients')
          .split(/[\n,]+/)
          .map((s) => s.trim())
          .filter(Boolean),
      });
      // The seed's page finds the task through the persistence hook (same tab, same key).
      saveTask({ taskId: started.task.id, taskType: 'broadcast', status: started.task.status });
      onStarted(started.task.id);
    } catch (err) {
      setError(readableError(err, 'en'));
    }
  }

  return (
    <form
      id="start-broadcast"
      onSubmit={(ev) => {
        ev.preventDefault();
        void submit(ev.currentTarget);
      }}
    >
      <label>
        Name <input name="name" required defaultValue="Example broadcast" />
      </label>
      <label>
        Message <input name="text" required defaultValue="Hello from the example host" />
      </label>
      <label>
        Recipients <textarea name="recipients" rows={3} />
      </label>
      <button type="submit">Start broadcast</button>
      {error && (
        <p role="alert" data-role="start-error">
          {error}
        </p>
      )}
    </form>
  );
}

function LiveTask({ config, taskId }: { config: HostConfig; taskId: number }) {
  const { task, error, cancel } = useLongTask(taskId, { baseUrl: config.apiBase, token: config.token });
  if (error) return <p role="alert">{readableError(error, 'en')}</p>;
  if (!task) return <p>Loading task #{taskId}…</p>;
  return (
    <LongTaskStatusCard
      {...taskCardProps(task)}
      lang="en"
      onCancel={() => {
        void cancel();
      }}
    />
  );
}

export function App({ config }: { config: HostConfig }) {
  const { activeTask } = useLongTaskPersistence(config.businessId, 'broadcast');
  const [started, setStarted] = useState<number | null>(null);
  const followed = started ?? activeTask?.taskId ?? null;
  return (
    <main>
      <h1>Example host</h1>
      <StartBroadcast config={config} onStarted={setStarted} />
      <section id="seed-page" aria-label="The seed's BroadcastPage">
        <h2>BroadcastPage (the seed's)</h2>
        <BroadcastPage businessId={config.businessId} />
      </section>
      <section id="live-task" aria-label="useLongTask">
        <h2>Live (useLongTask, cross-origin SSE)</h2>
        {followed !== null && <LiveTask key={followed} config={config} taskId={followed} />}
      </section>
    </main>
  );
}
