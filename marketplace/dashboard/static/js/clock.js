// "Now" in chain time, the clock every timestamp of the API is in.
//
// A devnet's clock can run ahead of the wall clock (time travel), and a chain with no new block
// does not say what time it is: so "now" is the wall clock, or the newest indexed block's time
// plus the seconds since we learned it, whichever is later. Ages are then never negative and are
// exact on a real chain.

let newestBlock = null; // { timestamp, seenAt } with seenAt in wall-clock seconds

export function observeBlockTime(timestamp) {
  if (typeof timestamp !== "number") return;
  if (newestBlock === null || timestamp >= newestBlock.timestamp) {
    newestBlock = { timestamp, seenAt: Date.now() / 1000 };
  }
}

export function chainNow() {
  const wall = Date.now() / 1000;
  if (newestBlock === null) return wall;
  return Math.max(wall, newestBlock.timestamp + (wall - newestBlock.seenAt));
}
