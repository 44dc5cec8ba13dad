% OHSU's five initial Besponsa pathways, criteria written in each pathway, (logic/ohsu.lp, the approving ones; the
% lymphoblastic-lymphoma case-review twins left out, which only shortens the
% justification), written for s(CASP) to compare the length of its answer for
% one denial with `pa-solver why` (README, "What a decision rests on").
% The case: examples/ohsu_adult_rr.json with 8 planned cycles.

planned_cycles(8).
units_per_21_days(30).
prior_inotuzumab(false).
cd22_positive(true).
baseline_ecg_normal(true).
ecg_monitoring_planned(true).
b_cell_precursor(true).
diagnosis(all).
age_years(52).
disease_setting(relapsed_refractory).
regimen(single_agent).
ph_status(negative).

% The same pathways with each pathway's criteria written out in it, as the policy
% and logic/ohsu.lp state them (no shared predicate for the common criteria).
pathway(adult_rr_single) :- planned_cycles(C), C =< 6, units_per_21_days(U), U =< 63, prior_inotuzumab(false),
    cd22_positive(true), baseline_ecg_normal(true), ecg_monitoring_planned(true),
    b_cell_precursor(true), diagnosis(all), age_years(A), A >= 18,
    disease_setting(relapsed_refractory), regimen(single_agent).
pathway(adult_rr_mini_hcvd) :- planned_cycles(C), C =< 6, units_per_21_days(U), U =< 63, prior_inotuzumab(false),
    cd22_positive(true), baseline_ecg_normal(true), ecg_monitoring_planned(true),
    b_cell_precursor(true), diagnosis(all), age_years(A), A >= 18,
    disease_setting(relapsed_refractory), mini_hcvd, ph_status(negative).
pathway(adult_rr_tki) :- planned_cycles(C), C =< 6, units_per_21_days(U), U =< 63, prior_inotuzumab(false),
    cd22_positive(true), baseline_ecg_normal(true), ecg_monitoring_planned(true),
    b_cell_precursor(true), diagnosis(all), age_years(A), A >= 18,
    disease_setting(relapsed_refractory), regimen(tki_combination), ph_status(positive).
pathway(adult_frontline_consolidation) :- planned_cycles(C), C =< 6, units_per_21_days(U), U =< 63,
    prior_inotuzumab(false), cd22_positive(true), baseline_ecg_normal(true), ecg_monitoring_planned(true),
    b_cell_precursor(true), diagnosis(all), age_years(A), A >= 18,
    disease_setting(frontline_consolidation), mini_hcvd, ph_status(negative).
pathway(pediatric_rr_single) :- planned_cycles(C), C =< 6, units_per_21_days(U), U =< 63, prior_inotuzumab(false),
    cd22_positive(true), baseline_ecg_normal(true), ecg_monitoring_planned(true),
    b_cell_precursor(true), diagnosis(all), age_years(A), A >= 1,
    disease_setting(relapsed_refractory), regimen(single_agent).
mini_hcvd :- regimen(mini_hyper_cvd).
mini_hcvd :- regimen(mini_hyper_cvd_blinatumomab).

approved :- pathway(_).
denied :- not approved.

?- denied.
