// The one predicted RTT to a peer that every view shows and every decision uses (`dbc peers
// --near`, `dbc find`, the dashboard, route choice). Before, `peers --near` showed raw Vivaldi
// (0.5 ms between four nodes on one machine) while `find` showed the declared cities' geo model
// (80.3 ms for the same peer). Vivaldi is learnt from measured RTTs, so once our coordinate has
// settled it is the better guess; until then the declared locations' model, else raw Vivaldi.

/** Our Vivaldi coordinate counts as settled once its error estimate is below this. */
export const VIVALDI_SETTLED_ERROR = 0.5

export interface RttPredictions {
  /** from both Vivaldi coordinates */
  vivaldiRttMs?: number
  /** from both declared locations (geo model) */
  geoRttMs?: number
}

/** `ourError`: the error estimate of our own Vivaldi coordinate (its last component). */
export function predictedRttMs (p: RttPredictions, ourError: number): number | undefined {
  const settled = ourError < VIVALDI_SETTLED_ERROR
  return (settled ? p.vivaldiRttMs : undefined) ?? p.geoRttMs ?? p.vivaldiRttMs
}
