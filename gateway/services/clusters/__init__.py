"""SIS (cluster management) on ``sis.<domain>``: registered clusters, their credentials and offers."""
