"""Analysis verbs as pure functions over PointsDB frames: they return data; rendering is separate."""
