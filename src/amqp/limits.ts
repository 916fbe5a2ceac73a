// Limits of the AMQP codec: frame sizes, string lengths and nesting, with units last.
// The broker negotiates frame_max within these; the codec enforces whatever it is given.

/** Frame size every peer must accept, and the decoder's limit before connection.tune-ok (RabbitMQ 4.1+). */
export const frameMinBytes = 8192;
/** The largest frame_max espresso proposes in connection.tune (RabbitMQ's default). */
export const frameMaxProposedBytes = 131072;
/** Frame header (type, channel, size) plus the frame-end octet: body frames carry frame_max - this. */
export const frameOverheadBytes = 8;
/** Header of a frame before its payload: type(1) channel(2) size(4). */
export const frameHeaderBytes = 7;
/** AMQP short strings carry an 8-bit length. */
export const shortStringMaxBytes = 255;
/** Nested tables and arrays deeper than this are refused with FRAME_ERROR (Java clients stop at 32). */
export const fieldTableDepthMax = 64;
/** Largest integer a 64-bit method or header field may carry: JS numbers are exact up to here. */
export const uint64AsNumberMax = Number.MAX_SAFE_INTEGER;
/** Bodies at most this long are copied into the frame buffer; longer ones are sliced, not copied. */
export const bodyCopyMaxBytes = 16384;
/** Reply texts are short strings; longer explanations are cut to fit. */
export const replyTextMaxBytes = 255;
/** Declared bodies above this are FRAME_ERROR whatever the configured maximum (RabbitMQ's hard cap). */
export const messageHardMaxBytes = 512 * 1024 * 1024;
