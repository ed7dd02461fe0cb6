"""Event schemas, subject names and the codec: the vocabulary every niyantra process shares."""
