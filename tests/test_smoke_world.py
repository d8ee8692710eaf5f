from wuyiqu.units.models import Household, Resident, Unit, UnitKind


def test_world_has_real_divisions_and_generated_units(world):
    assert Unit.objects.filter(parent__code="500110002").count() == 20
    assert Unit.objects.filter(kind=UnitKind.BUILDING, path__startswith=world.path).exists()
    assert Household.objects.exists()
    assert Resident.objects.count() >= 600
