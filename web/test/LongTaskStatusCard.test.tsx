// The seed's props in, the <long-task-card> element out.
import { act, fireEvent, render } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LongTaskStatusCard } from '../src/react';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const counter = (root: ParentNode, name: string) => root.querySelector<HTMLElement>(`[data-counter=${name}]`)?.dataset.value;

describe('LongTaskStatusCard', () => {
  it('renders the seed props, cancels, dismisses, and refreshes until the task ends', () => {
    const onCancel = vi.fn();
    const onDismiss = vi.fn();
    const onRefresh = vi.fn();
    const props = { taskId: 12, taskType: 'broadcast' as const, canCancel: true, onCancel, onDismiss, onRefresh, autoRefresh: true };
    const view = render(<LongTaskStatusCard {...props} status="running" total={200} processed={50} success={48} failed={2} lang="en" />);
    const card = view.container.querySelector('long-task-card');
    expect(card?.dataset.status).toBe('running');
    expect(card?.getAttribute('dir')).toBe('ltr');
    expect(card?.querySelector('[role=progressbar]')?.getAttribute('aria-valuenow')).toBe('25');
    expect(counter(view.container, 'success')).toBe('48');
    expect(counter(view.container, 'failed')).toBe('2');

    // Refreshes at once, then every 2.5 s (the seed's default).
    expect(onRefresh).toHaveBeenCalledTimes(1);
    act(() => {
      vi.advanceTimersByTime(2500);
    });
    expect(onRefresh).toHaveBeenCalledTimes(2);

    const cancel = card?.querySelector<HTMLButtonElement>('[data-action=cancel]');
    expect(cancel?.hidden).toBe(false);
    act(() => cancel?.click());
    expect(onCancel).toHaveBeenCalledTimes(1);
    fireEvent.click(card?.querySelector('[data-action=dismiss]') as Element);
    expect(onDismiss).toHaveBeenCalledTimes(1);

    view.rerender(<LongTaskStatusCard {...props} status="cancelled" canCancel={false} total={200} processed={60} success={58} failed={2} cancelled={140} lang="en" />);
    expect(card?.dataset.status).toBe('cancelled');
    expect(counter(view.container, 'cancelled')).toBe('140');
    expect(card?.querySelector<HTMLButtonElement>('[data-action=cancel]')?.hidden).toBe(true);
    act(() => {
      vi.advanceTimersByTime(10_000);
    });
    expect(onRefresh).toHaveBeenCalledTimes(2); // no polling after the end
  });

  it('shows "loading" before the host has a status, and Hebrew right-to-left by default', () => {
    document.documentElement.lang = 'he';
    const view = render(
      <LongTaskStatusCard taskId={3} taskType="receipt_sync" status={undefined as unknown as string} canCancel={false} onCancel={() => {}} />,
    );
    const card = view.container.querySelector('long-task-card');
    expect(card?.hasAttribute('data-loading')).toBe(true);
    expect(card?.querySelector('[data-field=status]')?.textContent).toBe('טוען...');
    expect(card?.querySelector('[data-action=dismiss]')?.hasAttribute('hidden')).toBe(true);
  });

  it('shows delivery counts when the task has them', () => {
    const view = render(
      <LongTaskStatusCard
        taskId={4}
        taskType="broadcast"
        status="completed"
        total={10}
        processed={10}
        success={10}
        canCancel={false}
        onCancel={() => {}}
        delivery={{ accepted: 10, delivered: 8, read: 5, failed: 1, pending: 1 }}
        lang="en"
      />,
    );
    const delivery = view.container.querySelector<HTMLElement>('[data-section=delivery]');
    expect(delivery?.hidden).toBe(false);
    const values: Record<string, string | undefined> = {};
    for (const n of delivery?.querySelectorAll<HTMLElement>('[data-delivery]') ?? []) {
      if (!n.closest<HTMLElement>('.counter')?.hidden) values[n.dataset.delivery ?? ''] = n.dataset.value;
    }
    expect(values).toEqual({ accepted: '10', delivered: '8', read: '5', failed: '1', pending: '1' });
    expect(delivery?.textContent).toContain('Delivered');
    // The API's counts add sends whose answer was lost and re-sends: shown when there are some.
    const row = (name: string) => delivery?.querySelector(`[data-delivery=${name}]`)?.closest<HTMLElement>('.counter');
    expect([row('unconfirmed')?.hidden, row('resent')?.hidden]).toEqual([true, true]);
    const api = { accepted: 10, delivered: 8, read: 5, failed: 1, pending: 3, unconfirmed: 2, resent: 0 };
    view.rerender(<LongTaskStatusCard taskId={4} taskType="broadcast" status="completed" canCancel={false} onCancel={() => {}} delivery={api} lang="en" />);
    expect([row('unconfirmed')?.hidden, row('resent')?.hidden]).toEqual([false, true]);
    expect(delivery?.querySelector<HTMLElement>('[data-delivery=unconfirmed]')?.dataset.value).toBe('2');
    expect(delivery?.textContent).toContain('Send unconfirmed');
    view.rerender(<LongTaskStatusCard taskId={4} taskType="broadcast" status="completed" canCancel={false} onCancel={() => {}} />);
    expect(delivery?.hidden).toBe(true);
  });
});
