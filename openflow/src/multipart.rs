//! MULTIPART requests and replies (statistics and descriptions).

use crate::stub::opaque_stub;

opaque_stub!(MultipartRequest, MultipartReply);
