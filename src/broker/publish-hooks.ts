// Exchanges whose publishes a higher layer takes instead of routing (espresso.tasks: task
// submission and worker reports, src/tasks). The broker checks the publish as any other (the
// exchange exists, the user may write to it), hands it to the hook, confirms once the hook
// resolves (ack when it took the message, nack when it refused it) and, when the message names
// a reply-to, sends the hook's answer there with the request's correlation id.

import type { MessageProperties } from './queue-backend.js';

export interface HookedPublish {
  readonly vhost: string;
  readonly user: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: MessageProperties;
  readonly body: Buffer;
}

export interface PublishHookAnswer {
  /** True: the message was taken (confirm ack); false: refused (confirm nack). */
  readonly ok: boolean;
  /** Sent to the publish's reply-to, if it named one. */
  readonly reply?: { readonly body: Buffer };
}

export type PublishHook = (p: HookedPublish) => Promise<PublishHookAnswer>;

/** Hooks by exchange name, the same in every vhost; set by the composition root before clients come. */
export class PublishHooks {
  private readonly hooks = new Map<string, PublishHook>();

  set(exchange: string, hook: PublishHook): void {
    this.hooks.set(exchange, hook);
  }

  get(exchange: string): PublishHook | undefined {
    return this.hooks.size === 0 ? undefined : this.hooks.get(exchange);
  }
}
