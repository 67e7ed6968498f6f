from django.contrib import admin

from equipment.models import (
    Closure,
    Label,
    Machine,
    MachineType,
    MaintenanceWindow,
    OpeningHours,
    Platform,
    PlatformMembership,
    PlatformStaff,
    Qualification,
    UserQualification,
)


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


class StaffInline(admin.TabularInline):
    model = PlatformStaff
    extra = 0
    autocomplete_fields = ["user"]


class PlatformMembershipInline(admin.TabularInline):
    model = PlatformMembership
    extra = 0
    autocomplete_fields = ["organization"]


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "city", "timezone"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "city"]
    filter_horizontal = ["labels"]
    inlines = [OpeningHoursInline, StaffInline, PlatformMembershipInline]


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "issuer"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(MachineType)
class MachineTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "category"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    list_display = ["name", "platform", "machine_type", "is_active", "approval_required"]
    list_filter = ["platform", "machine_type", "is_active"]
    search_fields = ["name", "description"]


admin.site.register(Closure)
admin.site.register(MaintenanceWindow)
admin.site.register(Qualification)
admin.site.register(UserQualification)
