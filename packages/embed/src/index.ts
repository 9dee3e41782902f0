// The embed SDK's entry point; the host and frame halves arrive with the embedding work.
export const PROTOCOL_VERSION = 1;
