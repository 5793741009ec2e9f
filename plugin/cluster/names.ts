/**
 * A node's id in the cluster is NODE_ID plus an incarnation suffix (`edge-1#3fa9c2`): a node that was
 * fenced joins again as someone new, so nothing written under its old id is taken for its own.
 */
import { randomBytes } from 'node:crypto';

export function newNodeId(name: string): string {
  return `${name}#${randomBytes(3).toString('hex')}`;
}

/** NODE_ID of a node id (the part before the incarnation suffix). */
export function nodeName(id: string): string {
  return id.replace(/#[0-9a-f]+$/, '');
}
