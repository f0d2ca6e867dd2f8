package evidence

import (
	"fmt"
	"strings"
)

// An item's kind is what the collector says it is, or, when they say
// nothing, what the media type sniffed from its bytes says (kindOf). A
// stated kind that the bytes contradict is refused (checkKind): the kind is
// written into the signed ingest record and receipt, which can never be
// corrected, so an item logged as a photo that is a video would mislead
// everyone who reads its history, for good; refusing costs the collector
// only a retry with the right kind, or with none. Only a positive
// contradiction is refused: the sniffed type names another medium. A type
// the sniffer does not know (application/octet-stream: camera raw files,
// many containers) contradicts nothing.

// kindOf is the kind a sniffed media type says an item is: photo, video,
// audio, document (PDF, PostScript, text), else other.
func kindOf(mediaType string) Kind {
	switch {
	case strings.HasPrefix(mediaType, "image/"):
		return KindPhoto
	case strings.HasPrefix(mediaType, "video/"):
		return KindVideo
	case strings.HasPrefix(mediaType, "audio/"):
		return KindAudio
	case mediaType == "application/pdf", mediaType == "application/postscript", strings.HasPrefix(mediaType, "text/"):
		return KindDocument
	}
	return KindOther
}

// movingImages are the image types that may hold an animation or an image
// sequence, which a collector may fairly call a video.
var movingImages = map[string]bool{
	"image/gif": true, "image/webp": true, "image/avif": true,
	"image/heic-sequence": true, "image/heif-sequence": true,
}

// contradicts reports whether an item of kind k cannot have the sniffed
// media type mediaType:
//
//   - photo: not a video or audio type;
//   - video: not audio, nor a still image type (an animated one may be);
//   - audio: not an image type. A video container (MP4, 3GP, WebM) may
//     hold sound alone, and the sniffer sees the container, not its tracks;
//   - document: not video or audio. A scanned or photographed document, a
//     screenshot, is an image;
//   - other: anything, and biometric_seizure_record is made by the service.
func contradicts(k Kind, mediaType string) bool {
	switch sniffed := kindOf(mediaType); k {
	case KindPhoto:
		return sniffed == KindVideo || sniffed == KindAudio
	case KindVideo:
		return sniffed == KindAudio || sniffed == KindPhoto && !movingImages[mediaType]
	case KindAudio:
		return sniffed == KindPhoto
	case KindDocument:
		return sniffed == KindVideo || sniffed == KindAudio
	}
	return false
}

// checkKind is the kind to record for an item stated as k (empty: none
// stated) whose bytes sniff as mediaType, or an error of kind invalid
// naming both when they contradict each other.
func checkKind(k Kind, mediaType string) (Kind, error) {
	if k == "" {
		return kindOf(mediaType), nil
	}
	if contradicts(k, mediaType) {
		return "", fmt.Errorf("%w: kind %s contradicts the file: its bytes are %s (the media type the service sniffed from them); upload it as kind %s, or without a kind to have it inferred", ErrInvalid, k, mediaType, kindOf(mediaType))
	}
	return k, nil
}
