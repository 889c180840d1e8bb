DROP TABLE videos;
DROP TABLE users;
