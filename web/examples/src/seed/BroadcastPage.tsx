// The seed's BroadcastPage (../shared/seed/000_3f7753e74b5f0268.txt, "Frontend: Using the Status
// Card"), as its authors wrote it, compiled by tsconfig.seed.json with the settings it was
// written for (not strict). Differences from the seed, all outside its body but one:
//  - the two imports point at @longtasks/ui/react, and `useState` is imported (the seed's
//    excerpt leaves its React import out);
//  - `export` at the end, so the host app can mount it;
//  - `taskStatus.` reads as `taskStatus?.`: the seed reads the status before its first fetch
//    (`taskStatus` starts null, and only the card's refresh fills it), which throws on the first
//    render of every tracked task; the card shows "loading" until the first refresh instead.
// Its relative fetch('/api/...') calls go to the host's own origin, which forwards /api to
// longtasks with the user's token (vite.config.ts), as the seed's own backend did.
import { useState } from 'react';
import { LongTaskStatusCard } from '@longtasks/ui/react';
import { useLongTaskPersistence } from '@longtasks/ui/react';

function BroadcastPage({ businessId }) {
  const { activeTask, saveTask, clearTask } = useLongTaskPersistence(
    businessId, 
    'broadcast'
  );
  const [taskStatus, setTaskStatus] = useState(null);
  
  const refreshStatus = async () => {
    const response = await fetch(`/api/long_tasks/${activeTask.taskId}`);
    const data = await response.json();
    setTaskStatus(data);
    saveTask({
      taskId: data.id,
      taskType: 'broadcast',
      status: data.status
    });
  };
  
  const handleCancel = async () => {
    await fetch(`/api/long_tasks/${activeTask.taskId}/cancel`, {
      method: 'POST'
    });
    refreshStatus();
  };
  
  return (
    <div>
      {activeTask && (
        <LongTaskStatusCard
          taskId={activeTask.taskId}
          taskType="broadcast"
          status={taskStatus?.status}
          total={taskStatus?.total_items}
          processed={taskStatus?.processed_items}
          success={taskStatus?.success_count}
          failed={taskStatus?.failed_count}
          canCancel={taskStatus?.status === 'running'}
          cancelRequested={taskStatus?.cancel_requested}
          onCancel={handleCancel}
          onDismiss={clearTask}
          onRefresh={refreshStatus}
          autoRefresh={true}
        />
      )}
    </div>
  );
}

export { BroadcastPage };
