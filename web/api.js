// The only way the UI talks to Marquee: the public GraphQL API at /graphql.

/** An API failure, classified so views can say something useful. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {'network'|'http'|'validation'|'not-found'|'bad-input'|'unauthenticated'|'forbidden'|'server'} kind
   * @param {object[]} [errors] the GraphQL errors, if any
   */
  constructor(message, kind, errors = []) {
    super(message);
    this.kind = kind;
    this.errors = errors;
  }
}

const ENDPOINT = '/graphql';

/** Runs a GraphQL operation and returns its `data`, or throws an ApiError. */
export async function gql(query, variables = {}) {
  let res;
  try {
    res = await fetch(ENDPOINT, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new ApiError('Cannot reach the Marquee server. Is it running?', 'network');
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${res.status} without a GraphQL response.`, 'http');
  }
  const errors = body.errors ?? [];
  if (errors.length) {
    const first = errors[0];
    const code = first.extensions?.code;
    // Errors that stop a query before it runs (unknown fields, bad arguments) carry no path.
    const kind = code === 'NOT_FOUND' ? 'not-found'
      : code === 'FORBIDDEN_TITLE' ? 'forbidden-title'
      : code === 'BAD_USER_INPUT' ? 'bad-input'
      : code === 'UNAUTHENTICATED' ? 'unauthenticated'
      : code === 'FORBIDDEN' ? 'forbidden'
      : !body.data && errors.every((e) => !e.path) ? 'validation'
      : 'server';
    throw new ApiError(errors.map((e) => e.message).join('; '), kind, errors);
  }
  if (!res.ok) throw new ApiError(`The server answered HTTP ${res.status}.`, 'http');
  return body.data;
}

const TITLE_FIELDS = 'id name year genres maturityRating posterUrl';

export const queries = {
  profiles: `query Profiles($first: Int!, $kids: Boolean) {
    profiles(first: $first, kids: $kids) { id accountId name isKids maturityLimit }
  }`,
  viewerState: `query ViewerState($p: ID!, $t: ID!) {
    viewerState(profileId: $p, titleId: $t) { progress completed rating thumbs }
  }`,
  profile: `query Profile($id: ID!) {
    profile(id: $id) { id accountId name isKids maturityLimit
      accountProfiles { id name isKids maturityLimit } }
  }`,
  home: `query Home($profileId: ID!) {
    home(profileId: $profileId) { requestId generatedAt modelVersion
      rows { id title definition items { position reason progress { fraction } title { ${TITLE_FIELDS} } evidence { id name } } } }
  }`,
  title: `query Title($id: ID!, $profileId: ID) {
    title(id: $id, profileId: $profileId) { ${TITLE_FIELDS} overview addedAt countries tagline runtime originalLanguage
      director cast { name character } backdropUrl }
    similar(titleId: $id, first: 20, profileId: $profileId) { ${TITLE_FIELDS} }
  }`,
  search: `query Search($query: String!, $first: Int!, $profileId: ID) {
    search(query: $query, first: $first, profileId: $profileId) { ${TITLE_FIELDS} }
  }`,
  genres: `query Genres { genres { name titleCount } }`,
  browse: `query Browse($genre: String, $first: Int!, $after: String, $profileId: ID) {
    browse(genre: $genre, first: $first, after: $after, profileId: $profileId) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${TITLE_FIELDS} } } }
  }`,
  recordEvents: `mutation Record($profileId: ID!, $events: [EventInput!]!) {
    recordEvents(profileId: $profileId, events: $events) { accepted duplicates }
  }`,
  experiments: `query Experiments {
    experiments { key featureKey name hashAttribute coverage condition namespace status winner
      phases { number startedAt endedAt }
      variations { index key name weight value } }
  }`,
  experimentReport: `query ExperimentReport($key: String!) {
    experimentReport(key: $key) { key phase srmPValue srmFlagged excludedProfiles status guardrailFlagged peekingWarning
      srmEpochs { startedAt weights firstExposedProfiles pValue }
      variations { index key name weight exposedProfiles impressions plays completes
        playRate completionRate conversion guardrailDegraded
        playRateLift { ...Lift } completionRateLift { ...Lift } conversionLift { ...Lift } } }
  }
  fragment Lift on LiftEstimate { relative ciLow ciHigh pValue significant sequentialPValue peeking }`,
  previewHome: `query Preview($profileId: ID!, $forced: [ForcedVariationInput!]) {
    home: previewHome(profileId: $profileId, forcedVariations: $forced) { requestId modelVersion
      assignments { featureKey experimentKey variationIndex variationKey inExperiment }
      rows { id title definition items { position reason progress { fraction } title { ${TITLE_FIELDS} } evidence { id name } } } }
  }`,
};
