public enum TendonServicePlaceholder {}
