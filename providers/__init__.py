"""Dynamic providers (the swarm targets' engine work, generated secrets, Heroku releases) and the one engine
client they share."""
