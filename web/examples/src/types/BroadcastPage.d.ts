// What the strict project sees of the seed's page (tsconfig.json maps `seed/BroadcastPage`
// here); the page itself is checked by tsconfig.seed.json, with the settings it was written for.
import type { JSX } from 'react';

export declare function BroadcastPage(props: { businessId: number }): JSX.Element;
