public enum TendonControlPlaceholder {}
